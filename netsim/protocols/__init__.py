"""Sans-I/O SMTP, POP3 and IMAP engines, and the byte layer beside them.

No SimPy, no clock, no sockets: engines take command events and return replies. The
simulation drives them with structured events; :mod:`netsim.protocols.wire` drives the same
engines with bytes (and :mod:`netsim.protocols.imap_client_wire` reads IMAP responses from
bytes for the client). SMTP reply constants live in :mod:`netsim.protocols.replies`, POP3 ones in
:mod:`netsim.protocols.pop3_replies`, IMAP ones in :mod:`netsim.protocols.imap_responses`.

SMTP, POP3 and IMAP share some command names (NOOP, RSET, QUIT, unknown, invalid): the SMTP
ones are exported as ``Noop``, ``Rset``, ``Quit``, ``Unknown``, ``Invalid``, the POP3 ones as
``POP3Noop``, ``POP3Rset``, ``POP3Quit``, ``POP3Unknown``, ``POP3Invalid``, and the IMAP ones
(and IMAP's ``List``, ``StartTLS`` and ``Data``) with the prefix ``IMAP``.
"""

from . import imap_commands, imap_responses, pop3_commands, pop3_replies, replies, smtp_commands
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .imap_client import FetchedMessage, FetchPlan, IMAPClient, IMAPClientState
from .imap_client_wire import IMAPResponseReader
from .imap_commands import (
    Authenticate,
    AuthenticateResponse,
    Capability,
    Close,
    Done,
    Enable,
    Examine,
    Expunge,
    Fetch,
    Idle,
    IMAPCommand,
    Login,
    Logout,
    Search,
    Select,
    Store,
    Unselect,
)
from .imap_commands import Invalid as IMAPInvalid
from .imap_commands import List as IMAPList
from .imap_commands import Noop as IMAPNoop
from .imap_commands import StartTLS as IMAPStartTLS
from .imap_commands import Unknown as IMAPUnknown
from .imap_parsing import parse_imap_command
from .imap_responses import (
    IMAP_RESPONSES,
    Continuation,
    FetchData,
    IMAPResponse,
    IMAPStatus,
    StatusResponse,
)
from .imap_responses import Data as IMAPData
from .imap_server import IMAP_TRANSITIONS, IMAPServer, IMAPState
from .imap_session import IMAPMailbox, IMAPServerHooks, IMAPSession, IMAPStoredMessage
from .imap_syntax import FetchAttribute, SearchKey, SequenceSet, StoreMode
from .imap_wire import IMAPWireServer, encode_imap_responses
from .loopback import Transcript, imap_exchange, pop3_exchange, smtp_exchange
from .pop3_client import POP3Client, POP3ClientState, RetrievedMessage, apop_digest
from .pop3_commands import (
    Apop,
    Capa,
    Dele,
    List,
    Pass,
    POP3Command,
    Retr,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)
from .pop3_commands import Invalid as POP3Invalid
from .pop3_commands import Noop as POP3Noop
from .pop3_commands import Quit as POP3Quit
from .pop3_commands import Rset as POP3Rset
from .pop3_commands import Unknown as POP3Unknown
from .pop3_replies import POP3_REPLIES, POP3Reply
from .pop3_server import POP3_TRANSITIONS, POP3Server, POP3State
from .pop3_session import POP3ServerHooks, POP3Session, StoredMessage
from .replies import REPLIES, Reply, greeting, relay_denied, user_unknown, with_text
from .smtp_client import ClientState, Credentials, SMTPClient
from .smtp_commands import (
    Auth,
    AuthResponse,
    Content,
    Data,
    Ehlo,
    Helo,
    Invalid,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Rset,
    SMTPCommand,
    StartTLS,
    Unknown,
)
from .smtp_server import SEQUENCE_ERRORS, TRANSITIONS, SMTPServer, SMTPState
from .smtp_session import DefaultHooks, Envelope, SMTPServerHooks, SMTPSession
from .wire import (
    POP3WireServer,
    SMTPWireServer,
    encode_command,
    encode_content,
    encode_pop3_reply,
    encode_reply,
    parse_pop3_command,
    parse_smtp_command,
)

__all__ = [
    "IMAP_RESPONSES",
    "IMAP_TRANSITIONS",
    "POP3_REPLIES",
    "POP3_TRANSITIONS",
    "REPLIES",
    "SEQUENCE_ERRORS",
    "TRANSITIONS",
    "Apop",
    "Auth",
    "AuthResponse",
    "Authenticate",
    "AuthenticateResponse",
    "Capa",
    "Capability",
    "ClientState",
    "Close",
    "Content",
    "Continuation",
    "Credentials",
    "Data",
    "DefaultHooks",
    "Dele",
    "Done",
    "Ehlo",
    "Enable",
    "Envelope",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttribute",
    "FetchData",
    "FetchPlan",
    "FetchedMessage",
    "Helo",
    "IMAPClient",
    "IMAPClientState",
    "IMAPCommand",
    "IMAPData",
    "IMAPInvalid",
    "IMAPList",
    "IMAPMailbox",
    "IMAPNoop",
    "IMAPResponse",
    "IMAPResponseReader",
    "IMAPServer",
    "IMAPServerHooks",
    "IMAPSession",
    "IMAPStartTLS",
    "IMAPState",
    "IMAPStatus",
    "IMAPStoredMessage",
    "IMAPUnknown",
    "IMAPWireServer",
    "Idle",
    "Invalid",
    "List",
    "LocalProtocolError",
    "Login",
    "Logout",
    "Mail",
    "Noop",
    "POP3Client",
    "POP3ClientState",
    "POP3Command",
    "POP3Invalid",
    "POP3Noop",
    "POP3Quit",
    "POP3Reply",
    "POP3Rset",
    "POP3Server",
    "POP3ServerHooks",
    "POP3Session",
    "POP3State",
    "POP3Unknown",
    "POP3WireServer",
    "Pass",
    "ProtocolError",
    "Quit",
    "Rcpt",
    "RemoteProtocolError",
    "Reply",
    "Retr",
    "RetrievedMessage",
    "Rset",
    "SMTPClient",
    "SMTPCommand",
    "SMTPServer",
    "SMTPServerHooks",
    "SMTPSession",
    "SMTPState",
    "SMTPWireServer",
    "Search",
    "SearchKey",
    "Select",
    "SequenceSet",
    "StartTLS",
    "Stat",
    "StatusResponse",
    "Stls",
    "Store",
    "StoreMode",
    "StoredMessage",
    "Top",
    "Transcript",
    "Uidl",
    "Unknown",
    "Unselect",
    "User",
    "apop_digest",
    "encode_command",
    "encode_content",
    "encode_imap_responses",
    "encode_pop3_reply",
    "encode_reply",
    "greeting",
    "imap_commands",
    "imap_exchange",
    "imap_responses",
    "parse_imap_command",
    "parse_pop3_command",
    "parse_smtp_command",
    "pop3_commands",
    "pop3_exchange",
    "pop3_replies",
    "relay_denied",
    "replies",
    "smtp_commands",
    "smtp_exchange",
    "user_unknown",
    "with_text",
]
