"""What accounts announces about API tokens, so other apps can act on it (classifier records it
in its audit log) while accounts depends on none of them.

The sender is the ApiToken model. Like Django's auth signals, each carries `request`: the
HttpRequest that caused it, or None (a management command, a password set through an
administrator's form).
"""

from __future__ import annotations

from django.dispatch import Signal

# After a token was created. token_id, request; via: the door when it is not the account page
# ("admin", "command"); for_email: the account it was made for, when made through such a door.
api_token_created = Signal()

# After one token was revoked, or a revocation found no such active token (revoked=False).
# token_id, request, revoked; actor: who revoked it when not the request's user (a password
# reset signs nobody in); via: as above; reason: why, when it was not asked for.
api_token_revoked = Signal()
