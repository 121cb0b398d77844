"""A Slurm job array for a queued study: one array task per queued run, all on one shared database.

Why a rendered ``sbatch`` script rather than submitit: the script is plain
text that a researcher can read, edit (modules, constraints, QoS) and keep
beside the study before running ``sbatch``; it needs no extra dependency and
no pickled Python on the compute nodes. Each task runs
``hybridscale worker --once``: it claims whichever run is next, so tasks
need no run-to-index mapping, a run already done is never redone, and a
task that finds the queue empty simply exits. The database URL reaches the
worker in the ``HYBRIDSCALE_DB`` environment variable, not on its command
line (which ``ps`` shows to everyone on the node); the CLI gives it without
its password, which the tasks find in ``~/.pgpass`` or ``PGPASSWORD``.

Every task must reach the same database. A SQLite file on a node's local disk
cannot be shared, and SQLite's WAL locking does not work across machines even
on a network filesystem, so :func:`check_shared_database` refuses a SQLite
file on a local filesystem and warns about one on a network filesystem;
PostgreSQL is the intended queue for a cluster.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

#: Filesystem types that every node of a cluster can mount (as in /proc/mounts).
SHARED_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "cifs", "smb3", "smbfs",
    "glusterfs", "fuse.glusterfs", "panfs", "wekafs", "fuse.juicefs", "9p",
})
#: One #SBATCH value: no spaces or shell characters, so it cannot break or extend the directive.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:,@+=/-]+")
#: The expansions a task's working folder may use: $NAME and ${NAME} (e.g. $SLURM_TMPDIR), nothing that runs code.
_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")
#: The environment variable the CLI reads when no --db is given.
DB_ENVIRONMENT = "HYBRIDSCALE_DB"


class SlurmError(ValueError):
    """The job array cannot be written as asked."""


@dataclass(frozen=True)
class SlurmOptions:
    """What ``#SBATCH`` asks for, per array task."""

    job_name: str = "hybridscale"
    partition: str | None = None
    account: str | None = None
    time: str = "24:00:00"
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    mem: str | None = None
    array_parallel: int | None = None
    log_dir: str = "slurm-logs"
    #: Shell lines run before the worker, e.g. "module load cuda" or "source ~/venv/bin/activate".
    setup: tuple[str, ...] = ()

    def validate(self) -> "SlurmOptions":
        for name in ("job_name", "partition", "account", "time", "mem", "log_dir"):
            value = getattr(self, name)
            if value is not None and not _SAFE_VALUE.fullmatch(value):
                raise SlurmError(f"--{name.replace('_', '-')} {value!r}: use letters, digits and _.:,@+=/- only")
        if self.gpus_per_task < 0:
            raise SlurmError(f"--gpus-per-task {self.gpus_per_task}: must be 0 (CPU only) or more")
        for name in ("cpus_per_task", "array_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SlurmError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        return self


def filesystem_type(path: Path, mounts: str) -> str:
    """The type of the filesystem holding ``path``, from /proc/mounts text (longest mount point wins)."""
    best, kind = "", "unknown"
    resolved = str(Path(path).resolve())
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def check_shared_database(url: str, *, allow_sqlite: bool, mounts: str | None = None) -> str | None:
    """Refuse a database the array's tasks cannot share; return a warning to print, or None.

    ``mounts`` is the text of /proc/mounts (read when None; absent off Linux).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    path = Path(parsed.database or "")
    if mounts is None:
        proc = Path("/proc/mounts")
        mounts = proc.read_text() if proc.is_file() else ""
    kind = filesystem_type(path, mounts)
    if kind in SHARED_FILESYSTEMS:
        return (
            f"warning: SQLite file {path} is on {kind}: every task can open it, but SQLite's locking is unreliable "
            "across machines; use a postgresql+psycopg:// URL for a multi-node array"
        )
    if not allow_sqlite:
        raise SlurmError(
            f"the array's tasks cannot share the SQLite file {path} ({kind} filesystem, not a shared one): "
            "use --db postgresql+psycopg://USER@HOST/DB, or --allow-sqlite if every task runs on this node"
        )
    return f"warning: SQLite file {path} ({kind} filesystem) is only reachable from this node (--allow-sqlite)"


def check_task_workdir(workdir: str | None) -> None:
    """Refuse a task working folder whose shell expansion would do more than read variables.

    It is written in double quotes so the task's shell expands ``$SLURM_TMPDIR``;
    ``$(...)``, backticks and other ``$`` forms would run or compute something.
    """
    if workdir is None:
        return
    rest = _VARIABLE.sub("", workdir)
    if "$" in rest or "`" in rest or any(ord(c) < 32 for c in workdir):
        raise SlurmError(
            f"--workdir {workdir!r}: only $NAME or ${{NAME}} variables may be expanded (e.g. '$SLURM_TMPDIR/hs'); "
            "no $(...), backticks or control characters"
        )


def _worker_command(*, python: str, nproc_per_node: int, artifacts: str | None, workdir: str | None) -> str:
    words = [shlex.quote(python), "-m", "hybridscale", "worker", "--once"]
    words += ["--device", "cuda" if nproc_per_node else "auto"]
    if nproc_per_node > 1:
        words += ["--nproc-per-node", str(nproc_per_node)]
    if artifacts:
        words += ["--artifacts", shlex.quote(artifacts)]
    if workdir:
        check_task_workdir(workdir)
        # Double quotes on purpose: the task's shell expands $SLURM_TMPDIR and friends (and nothing else).
        words += ["--workdir", '"' + re.sub(r'(["\\`])', r"\\\1", workdir) + '"']
    return " ".join(words)


def render_array(
    tasks: int, db_url: str, options: SlurmOptions, *, python: str = sys.executable,
    artifacts: str | None = None, workdir: str | None = None, study: str = "",
) -> str:
    """The sbatch script of a job array of ``tasks`` tasks, each executing one queued run.

    ``db_url`` is written into the script as it is given: pass it without a
    password (:func:`storage.db.url_without_password`), as the CLI does.
    """
    if tasks < 1:
        raise SlurmError("nothing to run: the study queued no run (all done or already queued)")
    options.validate()
    parallel = f"%{options.array_parallel}" if options.array_parallel else ""
    directives = [
        f"--job-name={options.job_name}",
        f"--array=0-{tasks - 1}{parallel}",
        "--ntasks=1",
        f"--cpus-per-task={options.cpus_per_task}",
        f"--time={options.time}",
        f"--output={options.log_dir}/%x-%A_%a.out",
    ]
    if options.gpus_per_task:
        directives.append(f"--gpus-per-task={options.gpus_per_task}")
    for name in ("partition", "account", "mem"):
        value = getattr(options, name)
        if value:
            directives.append(f"--{name}={value}")
    command = _worker_command(python=python, nproc_per_node=options.gpus_per_task, artifacts=artifacts,
                              workdir=workdir)
    lines = [
        "#!/bin/bash",
        f"# hybridscale study {study!r}: {tasks} queued run(s), one per array task.",
        "# Submit with: sbatch THIS_FILE   (task logs go to the --output folder below).",
        "# Each task claims the next queued run from the shared database; a task that",
        "# finds the queue empty exits at once. Runs requeued after a crash need one more",
        "# task: run 'hybridscale worker' or sbatch this file again.",
        *(f"#SBATCH {d}" for d in directives),
        "",
        "set -euo pipefail",
        *options.setup,
        f"export {DB_ENVIRONMENT}={shlex.quote(db_url)}",
        f"exec {command}",
        "",
    ]
    return "\n".join(lines)
