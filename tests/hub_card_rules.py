"""The Hugging Face Hub's rules for a dataset card's YAML metadata, as tests/hubserver.py applies them to
`POST /api/validate-yaml` and to every commit that adds a README.md (a bad card fails the push, as on the
Hub). Kept apart from cytohub's own code on purpose: it plays the Hub, so a mistake in cytohub's cards is not
mirrored here.

Sources (the Hub's own lists):
* license ids: the Hub's answer to an unknown license ("\"license\" must be one of [...]", quoted in
  huggingface_hub issue #4218, 2026-05) and hub-docs `docs/hub/repositories-licenses.md`; `license_name` is
  "an id ... like `my-license-1.0`" and `license_link` "LICENSE", "LICENSE.md" or a URL (hub-docs
  `datasetcard.md`);
* task_categories / task_ids: the task types and subtask types of huggingface.js
  `packages/tasks/src/pipelines.ts` (`PIPELINE_TYPES`, `SUBTASK_TYPES`);
* size_categories: `datasets/utils/resources/size_categories.json` (datasets <= 3.x);
* configs: hub-docs `datasets-manual-configuration.md` (config_name, data_files as a path, a list of paths or
  a list of {split, path}; at most one `default: true`); dataset_info.splits need name, num_bytes and
  num_examples (what `datasets` reads, see reference/hub-protocol.md pitfall 8);
* extra_gated_fields: hub-docs `datasets-gated.md` (text, checkbox, date_picker, country, ip_location, or a
  select with options).
Messages follow the Hub's form (`"field" must be ...`); the client prefixes "Invalid metadata in README.md.".
The exact pattern the Hub applies to `license_name` is not published; the documented form (lowercase
letters, digits, "-" and ".") is enforced.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

LICENSES = (
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr",
    "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "fair-noncommercial-research-license",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "grok2-community", "gemma", "unknown",
    "other",
)
TASK_CATEGORIES = (
    "biology", "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "text2text-generation", "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio",
    "automatic-speech-recognition", "audio-to-audio", "audio-classification", "audio-text-to-text",
    "voice-activity-detection", "depth-estimation", "image-classification", "object-detection",
    "image-segmentation", "text-to-image", "image-to-text", "image-to-image", "image-to-video",
    "unconditional-image-generation", "video-classification", "reinforcement-learning", "robotics",
    "tabular-classification", "tabular-regression", "tabular-to-text", "table-to-text", "multiple-choice",
    "text-ranking", "text-retrieval", "time-series-forecasting", "text-to-video", "image-text-to-text",
    "visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
    "mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
    "video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "other",
)
TASK_IDS = (
    "acceptability-classification", "entity-linking-classification", "fact-checking", "intent-classification",
    "language-identification", "multi-class-classification", "multi-label-classification",
    "multi-input-text-classification", "natural-language-inference", "semantic-similarity-classification",
    "sentiment-classification", "topic-classification", "semantic-similarity-scoring", "sentiment-scoring",
    "sentiment-analysis", "hate-speech-detection", "text-scoring", "named-entity-recognition", "part-of-speech",
    "parsing", "lemmatization", "word-sense-disambiguation", "coreference-resolution", "extractive-qa",
    "open-domain-qa", "closed-domain-qa", "news-articles-summarization", "news-articles-headline-generation",
    "dialogue-modeling", "dialogue-generation", "conversational", "language-modeling", "text-simplification",
    "explanation-generation", "abstractive-qa", "open-domain-abstractive-qa", "open-book-qa", "closed-book-qa",
    "slot-filling", "masked-language-modeling", "keyword-spotting", "speaker-identification",
    "audio-intent-classification", "audio-emotion-recognition", "audio-language-identification",
    "multi-label-image-classification", "multi-class-image-classification", "face-detection",
    "vehicle-detection", "instance-segmentation", "semantic-segmentation", "panoptic-segmentation",
    "image-captioning", "image-inpainting", "image-colorization", "super-resolution", "grasping", "task-planning",
    "tabular-multi-class-classification", "tabular-multi-label-classification",
    "tabular-single-column-regression", "rdf-to-text", "multiple-choice-qa",
    "multiple-choice-coreference-resolution", "document-retrieval", "utterance-retrieval",
    "entity-linking-retrieval", "fact-checking-retrieval", "univariate-time-series-forecasting",
    "multivariate-time-series-forecasting", "visual-question-answering", "document-question-answering",
    "pose-estimation",
)
SIZE_CATEGORIES = ("unknown", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M",
                   "100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T")
GATED_FIELD_TYPES = ("text", "checkbox", "date_picker", "country", "ip_location")
LICENSE_NAME_RE = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
SPLIT_RE = re.compile(r"\w+(?:\.\w+)*")
YAML_BLOCK = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n?", re.S)


def metadata(readme: str) -> dict | None:
    """The YAML front matter of a README as a dict (None when there is none). Raises ValueError when it does
    not parse or is not a mapping."""
    m = YAML_BLOCK.match(readme)
    if not m:
        return None
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"YAML metadata does not parse: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("YAML metadata must be a mapping")
    return data


def check_card(readme: str) -> list[str]:
    """Every rule a dataset card's metadata breaks, as the Hub words it (empty list: the Hub accepts it)."""
    try:
        meta = metadata(readme)
    except ValueError as exc:
        return [str(exc)]
    if meta is None:
        return []
    errors: list[str] = []
    _one_of_or_list(errors, meta, "license", LICENSES)
    if "license_name" in meta:
        name = meta["license_name"]
        if not isinstance(name, str) or not LICENSE_NAME_RE.fullmatch(name):
            errors.append(f'"license_name" with value {name!r} must be an id of lowercase letters, digits, "-" '
                          'and "." (e.g. my-license-1.0)')
    if "license_link" in meta:
        link = meta["license_link"]
        if not isinstance(link, str) or not (link in ("LICENSE", "LICENSE.md") or re.match(r"https?://\S+$", link)):
            errors.append(f'"license_link" with value {link!r} must be "LICENSE", "LICENSE.md" or a URL')
    _one_of_or_list(errors, meta, "task_categories", TASK_CATEGORIES)
    _one_of_or_list(errors, meta, "task_ids", TASK_IDS)
    _one_of_or_list(errors, meta, "size_categories", SIZE_CATEGORIES)
    for key in ("pretty_name",):
        if key in meta and not isinstance(meta[key], str):
            errors.append(f'"{key}" must be a string')
    for key in ("tags", "source_datasets", "language"):
        if key in meta and not (isinstance(meta[key], str) or _strings(meta[key])):
            errors.append(f'"{key}" must be a string or an array of strings')
    if "configs" in meta:
        _configs(errors, meta["configs"])
    if "dataset_info" in meta:
        infos = meta["dataset_info"] if isinstance(meta["dataset_info"], list) else [meta["dataset_info"]]
        for i, info in enumerate(infos):
            _dataset_info(errors, info, f"dataset_info[{i}]" if isinstance(meta["dataset_info"], list)
                          else "dataset_info")
    if "extra_gated_fields" in meta:
        _gated_fields(errors, meta["extra_gated_fields"])
    return errors


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _one_of_or_list(errors: list[str], meta: dict, key: str, allowed: tuple[str, ...]) -> None:
    if key not in meta:
        return
    value = meta[key]
    values = value if isinstance(value, list) else [value]
    for i, v in enumerate(values):
        if v not in allowed:
            where = f"{key}[{i}]" if isinstance(value, list) else key
            errors.append(f'"{where}" must be one of [{", ".join(allowed)}]')


def _configs(errors: list[str], configs: Any) -> None:
    if not isinstance(configs, list) or not configs:
        errors.append('"configs" must be a non-empty array')
        return
    names, defaults = [], 0
    for i, cfg in enumerate(configs):
        where = f"configs[{i}]"
        if not isinstance(cfg, dict):
            errors.append(f'"{where}" must be an object')
            continue
        name = cfg.get("config_name")
        if not isinstance(name, str) or not name:
            errors.append(f'"{where}.config_name" is required and must be a string')
        names.append(name)
        defaults += cfg.get("default") is True
        if "default" in cfg and not isinstance(cfg["default"], bool):
            errors.append(f'"{where}.default" must be a boolean')
        files = cfg.get("data_files")
        if files is None:
            continue  # data_dir or the default patterns apply
        if isinstance(files, str) or _strings(files):
            continue
        if not isinstance(files, list) or not files:
            errors.append(f'"{where}.data_files" must be a path, an array of paths or an array of {{split, path}}')
            continue
        splits = []
        for j, entry in enumerate(files):
            w = f"{where}.data_files[{j}]"
            if not isinstance(entry, dict) or set(entry) - {"split", "path"}:
                errors.append(f'"{w}" must be an object with "split" and "path"')
                continue
            split, path = entry.get("split"), entry.get("path")
            if not isinstance(split, str) or not SPLIT_RE.fullmatch(split):
                errors.append(f'"{w}.split" must be a split name matching {SPLIT_RE.pattern}')
            if not (isinstance(path, str) or (_strings(path) and path)):
                errors.append(f'"{w}.path" must be a path or an array of paths')
            splits.append(split)
        if len(set(splits)) != len(splits):
            errors.append(f'"{where}.data_files" lists a split twice')
    if len(set(names)) != len(names):
        errors.append('"configs" has duplicate config_name values')
    if defaults > 1:
        errors.append('"configs" may mark at most one config as default')


def _dataset_info(errors: list[str], info: Any, where: str) -> None:
    if not isinstance(info, dict):
        errors.append(f'"{where}" must be an object')
        return
    feats = info.get("features")
    if feats is not None and not (isinstance(feats, list) and all(isinstance(f, dict) and "name" in f
                                                                  for f in feats)):
        errors.append(f'"{where}.features" must be an array of {{name, dtype|list|struct|...}}')
    for j, split in enumerate(info.get("splits") or []):
        if not isinstance(split, dict) or not isinstance(split.get("name"), str) or any(
                not isinstance(split.get(k), int) or split.get(k) < 0 for k in ("num_bytes", "num_examples")):
            errors.append(f'"{where}.splits[{j}]" must have a name, num_bytes and num_examples')
    for key in ("download_size", "dataset_size"):
        if key in info and not (isinstance(info[key], int) and info[key] >= 0):
            errors.append(f'"{where}.{key}" must be a non-negative integer')


def _gated_fields(errors: list[str], fields: Any) -> None:
    if not isinstance(fields, dict):
        errors.append('"extra_gated_fields" must be an object')
        return
    for label, kind in fields.items():
        ok = kind in GATED_FIELD_TYPES or (isinstance(kind, dict) and kind.get("type") == "select"
                                           and isinstance(kind.get("options"), list) and kind["options"])
        if not ok:
            errors.append(f'"extra_gated_fields.{label}" must be one of [{", ".join(GATED_FIELD_TYPES)}] or '
                          "a select with options")
