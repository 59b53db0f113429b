// Passkeys (M9): the one script of the hosted pages, a progressive enhancement.
// A form marked data-passkey="create" or "get" names the <script
// type="application/json"> holding the server's options (data-options) and the
// hidden message shown on failure (data-error). On submit, the browser's WebAuthn
// call runs, its answer goes into the form's hidden "response" field as
// Registration/AuthenticationResponseJSON (WebAuthn L2 §5.1, base64url), and the
// form is sent as any other (CSRF token and origin check, F4). Without WebAuthn
// the marked elements stay hidden and every other form works as before.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function toBytes(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), function (c) { return c.charCodeAt(0); });
  }

  function toText(buffer) {
    let binary = "";
    new Uint8Array(buffer).forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
  }

  function publicKey(options, kind) {
    const decoded = Object.assign({}, options, { challenge: toBytes(options.challenge) });
    if (kind === "create") {
      decoded.user = Object.assign({}, options.user, { id: toBytes(options.user.id) });
      decoded.excludeCredentials = withIds(options.excludeCredentials);
    } else {
      decoded.allowCredentials = withIds(options.allowCredentials);
    }
    return decoded;
  }

  function answer(credential, kind) {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (kind === "create") {
      response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) {
        response.transports = r.getTransports();
      }
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) {
        response.userHandle = toText(r.userHandle);
      }
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response
    };
  }

  function enhance(form) {
    const kind = form.dataset.passkey;
    const source = document.getElementById(form.dataset.options || "");
    const failure = document.getElementById(form.dataset.error || "");
    if ((kind !== "create" && kind !== "get") || !source) {
      return;
    }
    form.addEventListener("submit", function (event) {
      if (form.dataset.answered === "yes") {
        return;
      }
      event.preventDefault();
      if (failure) {
        failure.hidden = true;
      }
      const options = { publicKey: publicKey(JSON.parse(source.textContent), kind) };
      const call = kind === "create"
        ? navigator.credentials.create(options)
        : navigator.credentials.get(options);
      call.then(function (credential) {
        form.elements.namedItem("response").value = JSON.stringify(answer(credential, kind));
        form.dataset.answered = "yes";
        form.submit();
      }).catch(function () {
        // Cancelled, timed out, or no authenticator: the page's own words, no alert.
        // Styled as an error only once shown, so a hidden one is no page error.
        if (failure) {
          failure.classList.add("error");
          failure.hidden = false;
        }
      });
    });
  }

  document.querySelectorAll("[data-passkey-only]").forEach(function (el) { el.hidden = false; });
  document.querySelectorAll("[data-passkey-missing]").forEach(function (el) { el.hidden = true; });
  document.querySelectorAll("form[data-passkey]").forEach(enhance);
})();
