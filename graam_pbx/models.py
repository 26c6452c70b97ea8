"""Every domain's models, imported once so ``Base.metadata`` knows every table."""

from graam_pbx.agents.models import (
    AgentDevice,
    AgentSession,
    AgentStateEvent,
    AgentStateInterval,
    PauseReason,
)
from graam_pbx.asterisk.models import ConfigGeneration, ConfigTrunkFailure
from graam_pbx.audit.models import AuditEntry
from graam_pbx.auth.models import ApiKey, LoginAttempt, RefreshToken, User
from graam_pbx.billing.models import (
    BillingAccount,
    BillingPlan,
    CdrArchive,
    Dispute,
    DunningStep,
    Holding,
    Invoice,
    InvoiceCounter,
    InvoiceDocument,
    InvoiceLine,
    LegalInterestRate,
    Payment,
    PortOutRequest,
    Price,
    Rate,
    RatedCall,
    RateDeck,
)
from graam_pbx.call_control.models import ClickToCall
from graam_pbx.campaigns.models import (
    CallRefusal,
    Campaign,
    CampaignAttempt,
    CampaignContact,
    Contact,
    ContactImport,
    ContactList,
    Disposition,
    DoNotCall,
    ImportRefusal,
    OppositionList,
    OppositionNumber,
)
from graam_pbx.cdr.models import Cdr
from graam_pbx.cluster.models import AsteriskNode, TenantPlacement
from graam_pbx.forwarding.models import ExternalNumber, UserForwarding
from graam_pbx.ivr.models import IvrMenu, IvrOption
from graam_pbx.moh.models import MohClass, MohClassPrompt
from graam_pbx.notices.models import Notice
from graam_pbx.numbers.models import PhoneNumber
from graam_pbx.prompts.models import Prompt
from graam_pbx.queue_calls.models import QueueCall
from graam_pbx.queues.models import Queue, QueueMember
from graam_pbx.recordings.models import Recording, RecordingRule, RecordingSettings
from graam_pbx.routing.models import InboundRoute, OutboundRoute, Schedule, Trunk
from graam_pbx.sip_security.models import SipBlock
from graam_pbx.stats.models import QueueStatsRollup
from graam_pbx.support.models import SupportMessage, SupportRequest
from graam_pbx.tenants.models import Tenant
from graam_pbx.voicemail.models import VoicemailBox, VoicemailNotification
from graam_pbx.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "AgentDevice",
    "AgentSession",
    "AgentStateEvent",
    "AgentStateInterval",
    "ApiKey",
    "AsteriskNode",
    "AuditEntry",
    "BillingAccount",
    "BillingPlan",
    "CallRefusal",
    "Campaign",
    "CampaignAttempt",
    "CampaignContact",
    "Cdr",
    "CdrArchive",
    "ClickToCall",
    "ConfigGeneration",
    "ConfigTrunkFailure",
    "Contact",
    "ContactImport",
    "ContactList",
    "Disposition",
    "Dispute",
    "DoNotCall",
    "DunningStep",
    "ExternalNumber",
    "Holding",
    "ImportRefusal",
    "InboundRoute",
    "Invoice",
    "InvoiceCounter",
    "InvoiceDocument",
    "InvoiceLine",
    "IvrMenu",
    "IvrOption",
    "LegalInterestRate",
    "LoginAttempt",
    "MohClass",
    "MohClassPrompt",
    "Notice",
    "OppositionList",
    "OppositionNumber",
    "OutboundRoute",
    "PauseReason",
    "Payment",
    "PhoneNumber",
    "PortOutRequest",
    "Price",
    "Prompt",
    "Queue",
    "QueueCall",
    "QueueMember",
    "QueueStatsRollup",
    "Rate",
    "RateDeck",
    "RatedCall",
    "Recording",
    "RecordingRule",
    "RecordingSettings",
    "RefreshToken",
    "Schedule",
    "SipBlock",
    "SupportMessage",
    "SupportRequest",
    "Tenant",
    "TenantPlacement",
    "Trunk",
    "User",
    "UserForwarding",
    "VoicemailBox",
    "VoicemailNotification",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
