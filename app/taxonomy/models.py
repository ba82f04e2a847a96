"""The editable 12351 taxonomy (categories with their terms) and the domain lexicon that feeds ASR correction."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class TermKind(StrEnum):
    law = "law"  # labour-law and procedure terms
    place = "place"  # Qingdao districts, streets, towns
    enterprise = "enterprise"  # enterprise names (also corrected to in case extraction)
    other = "other"


class TaxonomyCategory(Base):
    """One category of the taxonomy; cases keep the name, so a category is renamed by staff on purpose."""

    __tablename__ = "taxonomy_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(16), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    terms: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # rule terms for the categorizer
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LexiconTerm(Base):
    """A domain term for the ASR corrector (asr/lexicon.py) on top of asr/data/lexicon.txt."""

    __tablename__ = "lexicon_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16), index=True)
    added_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)]
Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class CategoryBase(BaseModel):
    name: Name
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    terms: list[Term] = Field(default_factory=list, max_length=200)
    active: bool = True

    @field_validator("terms")
    @classmethod
    def _distinct(cls, terms: list[str]) -> list[str]:
        return list(dict.fromkeys(terms))


class CategoryRead(CategoryBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int


class TaxonomyUpdate(BaseModel):
    """The whole taxonomy, in display order: categories not listed are removed (cases keep their name)."""

    categories: list[CategoryBase] = Field(min_length=1, max_length=100)


class TaxonomyRead(BaseModel):
    categories: list[CategoryRead]


class LexiconTermCreate(BaseModel):
    term: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=64)]
    kind: TermKind = TermKind.other


class LexiconTermRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    term: str
    kind: str
    added_by: str
    created_at: datetime


class LexiconList(BaseModel):
    total: int
    items: list[LexiconTermRead]
    enterprises_on_file: list[str]  # distinct enterprise names of cases: they feed the corrector too

    @classmethod
    def build(cls, total: int, items: list[Any], enterprises: list[str]) -> LexiconList:
        return cls(total=total, items=[LexiconTermRead.model_validate(i) for i in items],
                   enterprises_on_file=enterprises)
