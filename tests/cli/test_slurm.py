"""``hybridscale submit --slurm``: the rendered job array, checked as text and run through a real bash."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from hybridscale.cli import main
from hybridscale.slurm import SlurmError, SlurmOptions, check_shared_database, filesystem_type, render_array
from storage.db import open_db
from storage.queries import list_runs
from vocabulary.config import RunConfig, StudyConfig

#: 5 strategy variants (mono, cross, hybrid at 3 alphas) x 4 sizes x 5 seeds = 100 runs.
HUNDRED = StudyConfig(
    "sweep", strategies=("mono", "cross", "hybrid"), alphas=(0.25, 0.5, 0.75), train_sizes=(75, 150, 300, 600),
    seeds=(0, 1, 2, 3, 4), include_baseline=False, template=RunConfig(),
)
NASTY_URL = "postgresql+psycopg://hs:p'a$s;w%40rd`x@db.cluster:5432/hybridscale?sslmode=require"
MOUNTS = """\
/dev/sda1 / ext4 rw 0 0
nfs.cluster:/home /home nfs4 rw 0 0
/dev/sdb1 /home/scratch xfs rw 0 0
"""


def _directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def _through_bash(script: str, tmp_path: Path) -> tuple[list[str], str]:
    """Run the script with bash, the worker replaced by a program that prints its arguments, one per line,
    then the database it finds in its environment: (arguments, HYBRIDSCALE_DB)."""
    show = tmp_path / "show-args"
    show.write_text('#!/bin/bash\nprintf "%s\\n" "$@"\nprintf "%s" "$HYBRIDSCALE_DB"\n')
    show.chmod(0o755)
    path = tmp_path / "job.sbatch"
    path.write_text(script.replace(shlex.quote(_python(script)), str(show), 1))
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "SLURM_TMPDIR": "/tmp/job42"})
    assert done.returncode == 0, done.stderr
    *argv, database = done.stdout.split("\n")
    return argv, database


def _python(script: str) -> str:
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    return shlex.split(exec_line)[1]


def test_a_study_of_100_runs_becomes_one_array_of_100_tasks(tmp_path, capsys):
    study_file = tmp_path / "sweep.json"
    study_file.write_text(HUNDRED.to_json(), encoding="utf-8")
    db_path, out = tmp_path / "queue.db", tmp_path / "jobs" / "sweep.sbatch"
    status = main([
        "--db", str(db_path), "submit", str(study_file), "--slurm", "--allow-sqlite", "--slurm-out", str(out),
        "--partition", "gpu-a100", "--account", "proj_42", "--time", "04:00:00", "--gpus-per-task", "2",
        "--cpus-per-task", "16", "--mem", "64G", "--array-parallel", "8",
        "--slurm-setup", "export HF_HOME=/scratch/hf", "--slurm-setup", "source /dev/null",
        "--artifacts", "s3://lab-bucket/hybridscale", "--workdir", "$SLURM_TMPDIR/hs",
    ])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "100 run(s) queued" in printed.out and f"sbatch {out}" in printed.out
    assert "warning: SQLite file" in printed.err  # --allow-sqlite still says why it is risky
    assert len(list_runs(open_db(db_path))) == 100

    script = out.read_text()
    assert script.startswith("#!/bin/bash\n")
    assert _directives(script) == [
        "--job-name=hybridscale", "--array=0-99%8", "--ntasks=1", "--cpus-per-task=16", "--time=04:00:00",
        f"--output={tmp_path / 'jobs' / 'slurm-logs'}/%x-%A_%a.out", "--gpus-per-task=2", "--partition=gpu-a100",
        "--account=proj_42", "--mem=64G",
    ]
    assert (tmp_path / "jobs" / "slurm-logs").is_dir()  # Slurm does not create the --output folder
    assert f"\nexport HF_HOME=/scratch/hf\nsource /dev/null\nexport HYBRIDSCALE_DB=sqlite:///{db_path}\nexec " in script
    assert out.stat().st_mode & 0o077 == 0  # the database URL may carry a password
    argv, database = _through_bash(script, tmp_path)
    assert argv == [
        "-m", "hybridscale", "worker", "--once", "--device", "cuda",
        "--nproc-per-node", "2", "--artifacts", "s3://lab-bucket/hybridscale", "--workdir", "/tmp/job42/hs",
    ]
    assert database == f"sqlite:///{db_path}"  # in the environment, not on the command line ps shows
    subprocess.run(["bash", "-n", str(out)], check=True)


def test_the_database_url_reaches_the_worker_unchanged_through_bash(tmp_path):
    script = render_array(3, NASTY_URL, SlurmOptions(gpus_per_task=1, log_dir="/tmp/logs"), python="/opt/py 3/python")
    argv, database = _through_bash(script, tmp_path)
    assert database == NASTY_URL and "--db" not in argv
    assert "--nproc-per-node" not in argv  # one GPU: a plain worker, no torchrun
    assert "--array=0-2" in _directives(script)


def test_a_local_sqlite_file_is_refused_before_anything_is_queued(tmp_path, capsys):
    study_file = tmp_path / "sweep.json"
    study_file.write_text(HUNDRED.to_json(), encoding="utf-8")
    status = main(["--db", str(tmp_path / "queue.db"), "submit", str(study_file), "--slurm",
                   "--slurm-out", str(tmp_path / "x.sbatch")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0
    assert "cannot share the SQLite file" in err and "postgresql+psycopg://" in err and "--allow-sqlite" in err
    assert list_runs(open_db(tmp_path / "queue.db")) == []
    assert not (tmp_path / "x.sbatch").exists()


def test_sqlite_on_a_network_filesystem_is_accepted_with_a_warning():
    assert filesystem_type(Path("/home/ana/q.db"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/home/scratch/q.db"), MOUNTS) == "xfs"  # the longest mount point wins
    warning = check_shared_database("sqlite:////home/ana/q.db", allow_sqlite=False, mounts=MOUNTS)
    assert warning.startswith("warning: SQLite file /home/ana/q.db is on nfs4")
    with pytest.raises(SlurmError, match="xfs filesystem, not a shared one"):
        check_shared_database("sqlite:////home/scratch/q.db", allow_sqlite=False, mounts=MOUNTS)
    assert check_shared_database(NASTY_URL, allow_sqlite=False, mounts=MOUNTS) is None


def test_options_that_would_break_the_script_are_refused():
    with pytest.raises(SlurmError, match=r"--partition 'gpu\\nrm': use letters"):
        render_array(2, NASTY_URL, SlurmOptions(partition="gpu\nrm"))
    with pytest.raises(SlurmError, match="--array-parallel 0: must be at least 1"):
        render_array(2, NASTY_URL, SlurmOptions(array_parallel=0))
    with pytest.raises(SlurmError, match="nothing to run"):
        render_array(0, NASTY_URL, SlurmOptions())


def test_resubmitting_writes_no_array_when_nothing_new_is_queued(tmp_path, capsys):
    study_file = tmp_path / "sweep.json"
    study_file.write_text(HUNDRED.to_json(), encoding="utf-8")
    args = ["--db", str(tmp_path / "q.db"), "submit", str(study_file), "--slurm", "--allow-sqlite",
            "--slurm-out", str(tmp_path / "again.sbatch")]
    assert main(args) == 0
    (tmp_path / "again.sbatch").unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert "nothing new was queued" in capsys.readouterr().out
    assert not (tmp_path / "again.sbatch").exists()


@pytest.mark.parametrize("workdir", ["$(touch {marker})", "`touch {marker}`", "${{X:-$(touch {marker})}}",
                                     "$((1+1))/hs", "/tmp/a\nb"])
def test_a_workdir_that_would_run_code_is_refused_before_anything_is_queued(tmp_path, capsys, workdir):
    marker = tmp_path / "ran"
    workdir = workdir.format(marker=marker)
    study_file = tmp_path / "sweep.json"
    study_file.write_text(HUNDRED.to_json(), encoding="utf-8")
    out = tmp_path / "x.sbatch"
    status = main(["--db", str(tmp_path / "q.db"), "submit", str(study_file), "--slurm", "--allow-sqlite",
                   "--slurm-out", str(out), "--workdir", workdir])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "only $NAME or ${NAME} variables may be expanded" in err[0]
    assert list_runs(open_db(tmp_path / "q.db")) == [] and not out.exists()
    with pytest.raises(SlurmError, match="only"):
        render_array(2, "sqlite:////x.db", SlurmOptions(), workdir=workdir)
    assert not marker.exists()


def test_variables_in_the_workdir_are_still_expanded_by_the_task(tmp_path):
    script = render_array(1, "sqlite:////x.db", SlurmOptions(), workdir="${SLURM_TMPDIR}/hs-$SLURM_TMPDIR")
    argv, _ = _through_bash(script, tmp_path)
    assert argv[argv.index("--workdir") + 1] == "/tmp/job42/hs-/tmp/job42"
