from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from graam_pbx.fields import ObjectId
from graam_pbx.moh.models import DEFAULT_CLASS, MohClass

MAX_PROMPTS = 50


def _not_default(name: str) -> str:
    if name == DEFAULT_CLASS:
        raise ValueError(f"{DEFAULT_CLASS!r} is the installation's own class: choose another name")
    return name


def _each_once(prompt_ids: list[int]) -> list[int]:
    if len(set(prompt_ids)) != len(prompt_ids):
        raise ValueError("each prompt may appear once")
    return prompt_ids


# Shorter than other names: Asterisk's class name ``t<tenant id>-<name>`` holds 80 characters.
MohClassName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,47}$"),
    AfterValidator(_not_default),
    Field(
        examples=["jazz"], description="a-z, 0-9, '_' and '-', 1 to 48 characters; not 'default'"
    ),
]
PromptIds = Annotated[
    list[ObjectId],
    Field(
        min_length=1, max_length=MAX_PROMPTS, description="The tenant's prompts, in playing order."
    ),
    AfterValidator(_each_once),
]


class MohClassCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "jazz", "prompt_ids": [4, 7]}]}
    )

    name: MohClassName
    prompt_ids: PromptIds


class MohClassUpdate(BaseModel):
    """New music for the class; its name never changes (queues name it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt_ids": [7]}]})

    prompt_ids: PromptIds


class MohClassOut(BaseModel):
    id: int
    name: str = Field(description="What a queue's music_on_hold names.")
    asterisk_class: str = Field(description="The class in Asterisk (`moh show classes`).")
    prompt_ids: list[int] = Field(description="In playing order.")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, moh_class: MohClass, prompt_ids: list[int]) -> MohClassOut:
        return cls(
            id=moh_class.id,
            name=moh_class.name,
            asterisk_class=asterisk_class(moh_class.tenant_id, moh_class.name),
            prompt_ids=prompt_ids,
            version=moh_class.version,
            created_at=moh_class.created_at,
            updated_at=moh_class.updated_at,
        )


def asterisk_class(tenant_id: int, name: str) -> str:
    """The name Asterisk knows a tenant's class by (the renderer makes the same)."""
    return name if name == DEFAULT_CLASS else f"t{tenant_id}-{name}"
