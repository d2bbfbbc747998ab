"""The presets: what a generic CSV, a Salesforce Data Loader export and a HubSpot contact export look like.

A preset names the columns to look for (header names compare without regard to case, so Data Loader's
upper-case headers match) and the source's standard labels. An org's own status labels, owners and
columns go in the mapping file, which is laid over the preset.
"""

from __future__ import annotations

import re

from leadledger.importers.mapping import Preset, StatusTarget


def _cols(**fields: tuple[str | tuple[str, ...], ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """field=("Col", ("First", "Last")) -> alternatives as tuples of column names."""
    return {name: tuple((alt,) if isinstance(alt, str) else alt for alt in alts) for name, alts in fields.items()}


GENERIC = Preset(
    name="generic",
    kinds=("leads", "history"),
    columns={},
    required={"history": ("lead", "at")},
    hint="name the columns in a mapping file",
)

# The standard Lead Status picklist of a new org, and the values older orgs still carry.
SALESFORCE_STATUSES = {
    "Open - Not Contacted": StatusTarget(status="new"),
    "Working - Contacted": StatusTarget(status="attempting_contact"),
    "Closed - Converted": StatusTarget(status="converted"),
    "Closed - Not Converted": StatusTarget(status="disqualified"),
    "Open": StatusTarget(status="new"),
    "Contacted": StatusTarget(status="attempting_contact"),
    "Unqualified": StatusTarget(status="disqualified"),
    "Nurturing": StatusTarget(status="nurture"),
    "leadConverted": StatusTarget(status="converted"),  # what a LeadHistory `leadConverted` row means
}

SALESFORCE = Preset(
    name="salesforce",
    kinds=("leads", "history"),
    columns={
        "leads": _cols(
            id=("Id",),
            name=("Name", ("FirstName", "LastName"), "LastName"),
            email=("Email",),
            phone=("Phone", "MobilePhone"),
            company=("Company",),
            source=("LeadSource",),
            owner=("Owner.Name", "OwnerId"),
            created_at=("CreatedDate",),
            status=("Status",),
            actor=("CreatedBy.Name", "CreatedById"),
            deleted=("IsDeleted",),
            title=("Title",),
            industry=("Industry",),
            rating=("Rating",),
            country=("Country",),
            opportunity_id=("ConvertedOpportunityId",),
        ),
        "history": _cols(
            key=("Id",),
            lead=("LeadId",),
            at=("CreatedDate",),
            actor=("CreatedBy.Name", "CreatedById"),
            deleted=("IsDeleted",),
            field=("Field",),
            data_type=("DataType",),
            old_value=("OldValue",),
            new_value=("NewValue",),
        ),
    },
    statuses=SALESFORCE_STATUSES,
    required={"leads": ("id", "created_at"), "history": ("lead", "at", "field", "new_value")},
    hint="Lead.csv is a leads file, LeadHistory.csv a history file",
)

# hs_lead_status: the internal values (API exports) and the labels (exports from the contacts view).
HUBSPOT_STATUSES = {
    "NEW": StatusTarget(status="new"),
    "OPEN": StatusTarget(status="assigned"),
    "IN_PROGRESS": StatusTarget(status="working"),
    "In progress": StatusTarget(status="working"),
    "OPEN_DEAL": StatusTarget(status="converted"),
    "Open deal": StatusTarget(status="converted"),
    "UNQUALIFIED": StatusTarget(status="disqualified"),
    "ATTEMPTED_TO_CONTACT": StatusTarget(status="attempting_contact"),
    "Attempted to contact": StatusTarget(status="attempting_contact"),
    "CONNECTED": StatusTarget(status="connected"),
    "BAD_TIMING": StatusTarget(status="nurture", reason="bad_timing"),
    "Bad timing": StatusTarget(status="nurture", reason="bad_timing"),
}
HUBSPOT_STAGES = {
    "subscriber": "lead",
    "lead": "lead",
    "marketingqualifiedlead": "mql",
    "Marketing Qualified Lead": "mql",
    "salesqualifiedlead": "sql",
    "Sales Qualified Lead": "sql",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "customer",
    "other": "lead",
}

HUBSPOT = Preset(
    name="hubspot",
    kinds=("leads",),
    columns={
        "leads": _cols(
            id=("Record ID", "Contact ID", "hs_object_id", "VID"),
            name=(("First Name", "Last Name"), ("firstname", "lastname"), "Name"),
            email=("Email",),
            phone=("Phone Number", "Mobile Phone Number", "phone"),
            company=("Company Name", "company"),
            source=("Original Source", "Original Traffic Source", "hs_analytics_source"),
            owner=("Contact owner", "HubSpot Owner", "hubspot_owner_id"),
            created_at=("Create Date", "createdate"),
            status=("Lead Status", "hs_lead_status"),
            stage=("Lifecycle Stage", "lifecyclestage"),
            job_title=("Job Title", "jobtitle"),
            country=("Country/Region", "Country"),
        )
    },
    statuses=HUBSPOT_STATUSES,
    stages=HUBSPOT_STAGES,
    required={"leads": ("id", "created_at")},
    stage_date_headers=(
        # Date entered "Marketing Qualified Lead (Lifecycle Stage Pipeline)" - the current export
        re.compile(r"^date entered\s+[\"'“”]?(?P<stage>.+?)\s*\(lifecycle stage pipeline\)[\"'“”]?$", re.I),
        # Became a Marketing Qualified Lead Date - the older one
        re.compile(r"^became an?\s+(?P<stage>.+?)\s+date$", re.I),
        re.compile(r"^hs_lifecyclestage_(?P<stage>[a-z]+)_date$", re.I),
    ),
    hint="a HubSpot contact export is a leads file; its stage history comes from the Date entered columns",
)

_PRESETS = {p.name: p for p in (GENERIC, SALESFORCE, HUBSPOT)}


def preset_named(name: str) -> Preset:
    return _PRESETS[name]
