"""What operators watch the service with: Prometheus metrics and structured logs.

No HTTP here (api/ serves and measures requests); services report domain events
(logins, tokens, throttling) to the `Metrics` object create_app hands them."""
