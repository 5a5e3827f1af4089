"""Typed protocol errors.

Every protocol error is raised as an `IkeError` subclass that carries the notify type the
RFC prescribes as the reaction. The engine turns it into that notify (or into a silent
drop when the message is unauthenticated junk) and never lets it touch other SAs.
Like `iana`, this module is data that `pyiked._fast` may import.
"""

from .iana import NotifyType


class IkeError(Exception):
    """A protocol error with its RFC reaction.

    notify_type: the NotifyType to send (None: drop silently)
    offset: byte offset in the message where decoding failed (-1 when not a codec error)
    reason: human-readable cause, never containing secrets
    data: Notification Data to send with the notify (e.g. the payload type for
          UNSUPPORTED_CRITICAL_PAYLOAD, the group for INVALID_KE_PAYLOAD)
    """

    notify_type = None

    def __init__(self, reason="", offset=-1, data=b""):
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.data = data

    def __str__(self):
        where = f" at offset {self.offset}" if self.offset >= 0 else ""
        if self.notify_type is None:
            return f"{self.reason}{where}"
        return f"{self.notify_type.name}{where}: {self.reason}"

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.reason == other.reason
            and self.offset == other.offset
            and self.data == other.data
        )

    def __hash__(self):
        return hash((type(self), self.reason, self.offset, self.data))


class SilentDrop(IkeError):
    """Unauthenticated junk: RFC 7296 says to drop it without a reply."""


class UnsupportedCriticalPayload(IkeError):
    notify_type = NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD


class InvalidIkeSpi(IkeError):
    notify_type = NotifyType.INVALID_IKE_SPI


class InvalidMajorVersion(IkeError):
    notify_type = NotifyType.INVALID_MAJOR_VERSION


class InvalidSyntax(IkeError):
    notify_type = NotifyType.INVALID_SYNTAX


class InvalidMessageId(IkeError):
    notify_type = NotifyType.INVALID_MESSAGE_ID


class InvalidSpi(IkeError):
    notify_type = NotifyType.INVALID_SPI


class NoProposalChosen(IkeError):
    notify_type = NotifyType.NO_PROPOSAL_CHOSEN


class InvalidKePayload(IkeError):
    notify_type = NotifyType.INVALID_KE_PAYLOAD


class AuthenticationFailed(IkeError):
    notify_type = NotifyType.AUTHENTICATION_FAILED


class SinglePairRequired(IkeError):
    notify_type = NotifyType.SINGLE_PAIR_REQUIRED


class NoAdditionalSas(IkeError):
    notify_type = NotifyType.NO_ADDITIONAL_SAS


class InternalAddressFailure(IkeError):
    notify_type = NotifyType.INTERNAL_ADDRESS_FAILURE


class FailedCpRequired(IkeError):
    notify_type = NotifyType.FAILED_CP_REQUIRED


class TsUnacceptable(IkeError):
    notify_type = NotifyType.TS_UNACCEPTABLE


class TemporaryFailure(IkeError):
    notify_type = NotifyType.TEMPORARY_FAILURE


class ChildSaNotFound(IkeError):
    notify_type = NotifyType.CHILD_SA_NOT_FOUND


class IntegrityError(SilentDrop):
    """ICV mismatch or AEAD tag failure: RFC 7296 §2.21.2, drop and log only."""


class CryptoUnavailable(Exception):
    """A transform is known but not usable here (not a protocol error)."""


class EspError(SilentDrop):
    """An ESP packet to discard (RFC 4303 §3.4): counted and audited, never answered.

    Also raised by the sender side when an SA must not protect another packet (hard
    lifetime reached, sequence number exhausted, RFC 4303 §3.3.3).
    """


class ReplayError(EspError):
    """RFC 4303 §3.4.3: a duplicate, or a sequence number left of the replay window."""
