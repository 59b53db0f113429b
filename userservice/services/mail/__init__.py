"""Mail: composed from templates in the recipient's language, queued in the outbox
with the change that causes it, delivered by the sender after commit."""

from userservice.services.mail.compose import MailComposer
from userservice.services.mail.outbox import MailOutbox
from userservice.services.mail.sender import MailSender, SenderTiming
from userservice.services.mail.transport import transport_for

__all__ = ["MailComposer", "MailOutbox", "MailSender", "SenderTiming", "transport_for"]
