"""sentence-transformers model folders: read the module stack a folder declares, write ours back.

Reading accepts the stack that dense text encoders use, Transformer ->
Pooling -> Dense* -> Normalize (optional, last), in both on-disk layouts:

- legacy (sentence-transformers 2.x-5.x, e.g. LaBSE and multilingual-e5 on
  the hub): ``sentence_transformers.models.X`` types, ``pooling_mode_*``
  booleans, ``max_seq_length``/``do_lower_case`` in ``sentence_bert_config.json``,
  Dense weights as ``model.safetensors`` (a pickled ``pytorch_model.bin`` is
  refused: nothing is unpickled from disk);
- 6.x: ``sentence_transformers.base.modules...`` types, ``pooling_mode``, the
  maximum length as the tokenizer's ``model_max_length``.

Anything else (a module class of the model's own, LayerNorm, Router, a
chat-template backbone) is refused with one line: we never import a class
a folder names. Writing always uses the legacy layout, which every
sentence-transformers from 3.0 to 6.x loads; prompts are written under
"query", "passage" and "document", so 6.x's ``encode_document`` (which takes
"document" first) uses our passage prefix too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from safetensors.torch import load_file, save_file

from engine.heads import DEFAULT_ACTIVATION, DenseLayer, HeadError

#: A relative path inside the model -> its local file (downloaded if need be), or None when absent.
Files = Callable[[str], Path | None]

MODULES_FILE = "modules.json"
PROMPTS_FILE = "config_sentence_transformers.json"
#: The Transformer module's config, under each name sentence-transformers ever wrote it.
TRANSFORMER_CONFIGS: tuple[str, ...] = (
    "sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
    "sentence_camembert_config.json", "sentence_albert_config.json", "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
#: Legacy pooling booleans in the order 6.x concatenates them (``_LEGACY_POOLING_MODE_KWARGS``).
LEGACY_POOLING_KEYS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: encode_document()'s order of prompt names (sentence-transformers 6.x).
PASSAGE_PROMPT_NAMES: tuple[str, ...] = ("document", "passage", "corpus")
_KINDS = ("Transformer", "Pooling", "Dense", "Normalize")
_LEGACY_TYPE = "sentence_transformers.models.{}"


class ModelFolderError(ValueError):
    """A sentence-transformers folder declares something we cannot load exactly."""


@dataclass(frozen=True)
class DenseSpec:
    """One Dense module as its folder declares it; ``weights`` is its local weight file."""

    in_features: int
    out_features: int
    bias: bool
    activation: str
    weights: Path


@dataclass(frozen=True)
class ModuleStack:
    """What a sentence-transformers folder says about turning text into a vector.

    ``max_seq_length`` is None when the folder leaves it to the tokenizer
    (6.x); ``query_prompt``/``passage_prompt`` are None when it stores no
    prompt at all.
    """

    transformer_path: str
    pooling: str
    include_prompt: bool
    embedding_dimension: int | None
    dense: tuple[DenseSpec, ...]
    normalize: bool
    max_seq_length: int | None
    do_lower_case: bool
    query_prompt: str | None
    passage_prompt: str | None


# ---- reading ---------------------------------------------------------------
def _json(files: Files, relative: str, where: str, required: bool = True) -> Any:
    path = files(relative)
    if path is None:
        if required:
            raise ModelFolderError(f"{where}: {relative} is missing; it is not a complete sentence-transformers model")
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{where}: {relative} is not readable JSON ({exc}); fix or re-download it") from None


def _kind(entry: Any, where: str) -> str:
    """Transformer, Pooling, Dense or Normalize, from a modules.json entry of either layout."""
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str) or not isinstance(entry.get("path"), str):
        raise ModelFolderError(f"{where}: modules.json entries need a 'type' and a 'path'; got {entry!r}")
    name = entry["type"]
    kind = name.rsplit(".", 1)[-1]
    if not name.startswith("sentence_transformers."):
        raise ModelFolderError(f"{where}: module {name!r} is the model's own code; hybridscale never runs it "
                               "(no trust_remote_code)")
    if kind not in _KINDS:
        raise ModelFolderError(f"{where}: module {name!r} is not supported; hybridscale loads Transformer -> "
                               "Pooling -> Dense -> Normalize stacks only")
    return kind


def _check_order(kinds: list[str], where: str) -> None:
    body = kinds[2:-1] if kinds[-1:] == ["Normalize"] else kinds[2:]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Dense" for k in body):
        raise ModelFolderError(f"{where}: modules {' -> '.join(kinds)} are not Transformer -> Pooling -> "
                               "Dense* -> Normalize, the only order hybridscale loads")


def read_stack(files: Files, where: str) -> ModuleStack | None:
    """The folder's module stack, or None when it has no modules.json (a plain transformers model)."""
    modules = _json(files, MODULES_FILE, where, required=False)
    if modules is None:
        return None
    if not isinstance(modules, list) or not modules:
        raise ModelFolderError(f"{where}: modules.json must be a non-empty list of modules")
    kinds = [_kind(entry, where) for entry in modules]
    _check_order(kinds, where)
    paths = [entry["path"].strip("/") for entry in modules]
    transformer = _transformer_config(files, paths[0], where)
    pooling, include_prompt, dimension = _pooling(_json(files, f"{paths[1]}/config.json", where), where)
    dense = tuple(_dense(files, path, where) for path, kind in zip(paths, kinds) if kind == "Dense")
    query_prompt, passage_prompt = _prompts(_json(files, PROMPTS_FILE, where, required=False), where)
    return ModuleStack(
        transformer_path=paths[0],
        pooling=pooling,
        include_prompt=include_prompt,
        embedding_dimension=dimension,
        dense=dense,
        normalize=kinds[-1] == "Normalize",
        max_seq_length=transformer.get("max_seq_length"),
        do_lower_case=bool(transformer.get("do_lower_case", False)),
        query_prompt=query_prompt,
        passage_prompt=passage_prompt,
    )


def _transformer_config(files: Files, path: str, where: str) -> dict[str, Any]:
    prefix = f"{path}/" if path else ""
    config: dict[str, Any] = {}
    for name in TRANSFORMER_CONFIGS:
        found = _json(files, prefix + name, where, required=False)
        if found is not None:
            config = found
            break
    if not isinstance(config, dict):
        raise ModelFolderError(f"{where}: the Transformer module's config must be a JSON object")
    task = config.get("transformer_task", "feature-extraction")
    modality = config.get("modality_config", {"text": {"method": "forward", "method_output_name": "last_hidden_state"}})
    text = modality.get("text") if isinstance(modality, dict) else None
    plain_text = (isinstance(text, dict) and set(modality) == {"text"} and text.get("method") == "forward"
                  and text.get("method_output_name") == "last_hidden_state")
    token_output = config.get("module_output_name", "token_embeddings") == "token_embeddings"
    if task != "feature-extraction" or not plain_text or not token_output:
        raise ModelFolderError(f"{where}: its Transformer is a {task!r} module with inputs {modality!r}; hybridscale "
                               "loads text feature-extraction encoders only")
    length = config.get("max_seq_length")
    if length is not None and not (isinstance(length, int) and length > 0):
        raise ModelFolderError(f"{where}: max_seq_length {length!r} is not a positive whole number")
    return config


def _pooling(config: Any, where: str) -> tuple[str, bool, int | None]:
    """(mode, include_prompt, embedding dimension) from either layout of ``1_Pooling/config.json``."""
    if not isinstance(config, dict):
        raise ModelFolderError(f"{where}: the Pooling config must be a JSON object")
    mode: Any = config.get("pooling_mode")
    if mode is None:
        modes = [value for key, value in LEGACY_POOLING_KEYS.items() if config.get(key)]
        mode = modes if modes else "mean"  # sentence-transformers' default when no boolean is set
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else mode
    if not isinstance(mode, str):
        raise ModelFolderError(f"{where}: pooling modes {' + '.join(map(str, mode))} are concatenated; hybridscale "
                               "pools with one mode only")
    if mode not in LEGACY_POOLING_KEYS.values():
        raise ModelFolderError(f"{where}: pooling mode {mode!r} is unknown")
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    return mode, bool(config.get("include_prompt", True)), dimension


def _dense(files: Files, path: str, where: str) -> DenseSpec:
    config = _json(files, f"{path}/config.json", where)
    if not isinstance(config, dict):
        raise ModelFolderError(f"{where}: {path}/config.json must be a JSON object")
    if config.get("module_input_name", "sentence_embedding") != "sentence_embedding" or \
            config.get("module_output_name", "sentence_embedding") != "sentence_embedding":
        raise ModelFolderError(f"{where}: {path} maps {config.get('module_input_name')!r}; hybridscale's Dense "
                               "layers act on the sentence embedding only")
    weights = files(f"{path}/model.safetensors")
    if weights is None:
        if files(f"{path}/pytorch_model.bin") is not None:
            raise ModelFolderError(
                f"{where}: {path} holds its weights only as pytorch_model.bin, a pickle, and hybridscale unpickles "
                "nothing from disk; save the model once with sentence-transformers "
                "(SentenceTransformer(folder).save(new_folder)), which writes model.safetensors")
        raise ModelFolderError(f"{where}: {path} has no model.safetensors")
    try:
        return DenseSpec(int(config["in_features"]), int(config["out_features"]), bool(config.get("bias", True)),
                         str(config.get("activation_function", DEFAULT_ACTIVATION)), Path(weights))
    except (KeyError, TypeError, ValueError):
        raise ModelFolderError(f"{where}: {path}/config.json needs in_features and out_features") from None


def _prompts(config: Any, where: str) -> tuple[str | None, str | None]:
    """(query prompt, passage prompt); (None, None) when the folder stores no non-empty prompt.

    The passage prompt is the first non-empty of "document", "passage",
    "corpus": 6.x merges an empty "document" into every folder it saves, and
    ``encode_document`` would then take it over an e5-style "passage: ".
    A prompt a kind lacks falls back to the default prompt, which the
    model's authors meant for every input.
    """
    if config is None:
        return None, None
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if not isinstance(prompts, dict):
        return None, None
    texts = {name: text for name, text in prompts.items() if isinstance(text, str) and text}
    if not texts:
        return None, None
    default = texts.get(config.get("default_prompt_name") or "", "")
    passage = next((texts[name] for name in PASSAGE_PROMPT_NAMES if name in texts), default)
    return texts.get("query", default), passage


def dense_layer(spec: DenseSpec, where: str) -> DenseLayer:
    """The Dense layer with its stored safetensors weights."""
    try:
        layer = DenseLayer(spec.in_features, spec.out_features, spec.bias, spec.activation)
    except HeadError as exc:
        raise ModelFolderError(f"{where}: {exc}") from None
    try:
        state = load_file(str(spec.weights))
    except Exception as exc:  # a corrupt or truncated file, whatever the library raises
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelFolderError(f"{where}: Dense weights {spec.weights} are unreadable ({type(exc).__name__}: "
                               f"{first_line}); re-download the model") from None
    expected = {name: tuple(value.shape) for name, value in layer.state_dict().items()}
    found = {name: tuple(value.shape) for name, value in state.items()} if isinstance(state, dict) else {}
    if found != expected:
        raise ModelFolderError(f"{where}: Dense weights {spec.weights.name} do not fit "
                               f"{spec.in_features}->{spec.out_features}: they hold {found}, it needs {expected}")
    layer.load_state_dict(state, strict=True)
    return layer


# ---- writing ---------------------------------------------------------------
def write_stack(
    folder: Path,
    *,
    hidden_size: int,
    pooling: str,
    include_prompt: bool,
    dense: Sequence[DenseLayer],
    normalize: bool,
    max_length: int,
    lowercase_inputs: bool,
    query_prefix: str,
    passage_prefix: str,
) -> None:
    """The sentence-transformers files of a model whose Transformer is already saved at ``folder``'s root."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": _LEGACY_TYPE.format("Transformer")},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": _LEGACY_TYPE.format("Pooling")}]
    files: dict[str, Any] = {
        "sentence_bert_config.json": {"max_seq_length": max_length, "do_lower_case": lowercase_inputs},
        "1_Pooling/config.json": {"word_embedding_dimension": hidden_size,
                                  **{key: pooling == mode for key, mode in LEGACY_POOLING_KEYS.items()},
                                  "include_prompt": include_prompt},
        PROMPTS_FILE: {"prompts": {"query": query_prefix, "passage": passage_prefix, "document": passage_prefix},
                       "default_prompt_name": None, "similarity_fn_name": "cosine" if normalize else "dot"},
    }
    (folder / "1_Pooling").mkdir()
    for layer in dense:
        index = len(modules)
        path = f"{index}_Dense"
        modules.append({"idx": index, "name": str(index), "path": path, "type": _LEGACY_TYPE.format("Dense")})
        (folder / path).mkdir()
        files[f"{path}/config.json"] = layer.config()
        save_file({k: v.detach().cpu().contiguous() for k, v in layer.state_dict().items()},
                  str(folder / path / "model.safetensors"))
    if normalize:
        index = len(modules)
        modules.append({"idx": index, "name": str(index), "path": f"{index}_Normalize",
                        "type": _LEGACY_TYPE.format("Normalize")})
        (folder / f"{index}_Normalize").mkdir()
    files[MODULES_FILE] = modules
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
