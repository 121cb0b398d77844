"""The engine's answers to the setup form's questions about a study's data (:class:`results.study_data.StudyData`).

The GUI never imports the engine, so the shell builds this and hands it to
the window (``hybridscale gui``). The hub files are the ones ``hybridscale
data list`` prints (:mod:`engine.data.remote`), named by the evaluation or
training source they belong to; the corpus checks are the ones ``hybridscale
submit`` makes (:mod:`engine.data.preflight`), so the form and the command
refuse the same study with the same line.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from results.study_data import Download
from vocabulary.config import ConfigError, RunConfig, StudyConfig
from vocabulary.sources import parse_source


class EngineStudyData:
    """:class:`results.study_data.StudyData` from the engine's data modules (imported on first use)."""

    def __init__(self) -> None:
        #: URL -> the engine's file, for the sizes (asked on another thread; a URL's file never changes).
        self._files: dict[str, object] = {}

    def downloads(self, study: StudyConfig) -> list[Download]:
        from engine.data.remote import study_files

        names = _names(study.template)
        files = study_files(study.expand())
        self._files.update((f.url, f) for f in files)
        return [Download(names.get(f, f.url), f.url) for f in files]

    def with_sizes(self, downloads: Sequence[Download]) -> tuple[list[Download], str | None]:
        from engine.data.remote import with_sizes

        found, unreachable = with_sizes(self._files[d.url] for d in downloads)
        return [dataclasses.replace(d, size=f.size, files=None if f.sizes is None else len(f.sizes))
                for d, f in zip(downloads, found)], unreachable

    def check(self, study: StudyConfig) -> None:
        if all(spec.path is None for spec in study.template.evaluations):
            return  # the engine is imported only once a local corpus is named
        from engine.data.errors import DataError, DataNotFoundError
        from engine.data.preflight import check_corpus

        for spec in study.template.evaluations:
            try:
                check_corpus(spec)
            except (DataError, DataNotFoundError) as exc:
                raise ConfigError(f"evaluations[{spec.dataset}]", str(exc)) from None


def _names(template: RunConfig) -> dict[object, str]:
    """Each hub file of the template's sources -> what it belongs to: ``ciral sw corpus``, ``afriqa collection``,
    ``mmarco training data``."""
    from engine.data.remote import eval_files, train_files

    names: dict[object, str] = {}
    for spec in template.evaluations:
        if spec.corpus is not None:  # one collection searched by every language's questions (AfriQA's)
            names.update((hub_file, f"{spec.dataset} collection") for hub_file in eval_files(spec))
            continue
        for lang in spec.languages:
            for hub_file in eval_files(dataclasses.replace(spec, languages=(lang,))):
                names.setdefault(hub_file, f"{spec.dataset} {lang} corpus")
    for source in template.train_sources:
        for hub_file in train_files(source, template.train_languages):
            names.setdefault(hub_file, f"{parse_source(source)[0]} training data")
    return names

