"""Database tables (SQLAlchemy 2.0 typed ORM).

A run's primary key is the hash of its RunConfig (``RunConfig.run_id``), so the
same settings submitted by two studies are one row trained once; the
``study_runs`` table records which studies asked for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from vocabulary.status import RunStatus


def utcnow() -> dt.datetime:
    """Naive UTC timestamps: SQLite has no time zones, and all machines agree on UTC."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


study_runs = Table(
    "study_runs",
    Base.metadata,
    Column("study_id", ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
)


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    config_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    runs: Mapped[list["Run"]] = relationship(secondary=study_runs, back_populates="studies")


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    config_json: Mapped[str] = mapped_column(Text)
    # Text, not VARCHAR(n): a label embeds the model, which may be a long local path (schema version 2).
    label: Mapped[str] = mapped_column(Text)
    # Denormalised from the config so plots and the queue view need no JSON parsing.
    model: Mapped[str] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(String(32))
    alpha: Mapped[Optional[float]] = mapped_column(Float)
    train_size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)

    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[Optional[str]] = mapped_column(String(200))
    # The claiming process (schema version 3): a worker on the same host sees at once that it is gone.
    worker_host: Mapped[Optional[str]] = mapped_column(String(255))
    worker_pid: Mapped[Optional[int]] = mapped_column(Integer)
    heartbeat_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    phase: Mapped[str] = mapped_column(String(200), default="")
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[Optional[float]] = mapped_column(Float)
    #: The latest loss on held-out dev groups of the training source, when the run computes one (schema version 5).
    dev_loss: Mapped[Optional[float]] = mapped_column(Float)
    #: The step whose weights a finished training run kept (schema version 7); ``step`` is the last one trained.
    selected_step: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[Optional[str]] = mapped_column(Text)
    log_path: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    studies: Mapped[list[Study]] = relationship(secondary=study_runs, back_populates="runs")
    metrics: Mapped[list["Metric"]] = relationship(back_populates="run", cascade="all, delete-orphan")
    query_values: Mapped[list["QueryValueSet"]] = relationship(cascade="all, delete-orphan")
    checkpoints: Mapped[list["Checkpoint"]] = relationship(cascade="all, delete-orphan")
    provenance: Mapped[list["Provenance"]] = relationship(cascade="all, delete-orphan")

    __table_args__ = (Index("ix_runs_queue", "status", "position"),)


class _MetricCell:
    """The columns that name one metric cell of a run, shared by its aggregate row and its per-query values
    (``sort_order`` keeps them first, as the tables were created before they were shared)."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-7)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True, sort_order=-6)
    eval_set: Mapped[str] = mapped_column(String(100), sort_order=-5)
    setting: Mapped[str] = mapped_column(String(16), sort_order=-4)
    query_language: Mapped[str] = mapped_column(String(16), sort_order=-3)
    passage_language: Mapped[str] = mapped_column(String(16), sort_order=-2)
    metric: Mapped[str] = mapped_column(String(64), sort_order=-1)


#: The columns a cell is unique on, in both tables.
_CELL_KEY = ("run_id", "eval_set", "setting", "query_language", "passage_language", "metric")


class Metric(_MetricCell, Base):
    __tablename__ = "metrics"

    value: Mapped[float] = mapped_column(Float)
    num_queries: Mapped[int] = mapped_column(Integer, default=0)

    run: Mapped[Run] = relationship(back_populates="metrics")

    __table_args__ = (
        UniqueConstraint(*_CELL_KEY, name="uq_metric_cell"),
    )


class QueryValueSet(_MetricCell, Base):
    """The per-query values of one metric cell (the ones its ``metrics`` row averages), packed (schema version 4).

    One row per cell and metric, not per value: a study's per-query values
    run to millions (FLORES with 11 languages gives about 600,000 per run),
    and a row per value costs SQLite several times as much
    (``bench/per_query_size.py`` measures it). ``packed_ids`` holds the cell's query ids,
    ``packed_values`` their float64 values in that order (:mod:`storage.packing`).
    """

    __tablename__ = "query_values"

    packed_ids: Mapped[bytes] = mapped_column(LargeBinary)
    packed_values: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint(*_CELL_KEY, name="uq_query_values_cell"),
    )


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Provenance(Base):
    """What produced one attempt of a run: software, hardware, phase timings, peak memory, data read
    (schema version 6). The record is JSON (:mod:`vocabulary.provenance` says what it holds): its fields
    grow with what a worker can tell, and no query filters on them. Rows are appended: an attempt handed
    back to the queue (a stopped worker) keeps its number for the next one, and both records stay."""

    __tablename__ = "provenance"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    record_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    """An append-only journal of what happened to runs (claimed, requeued, failed...)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
