"""From a source's fields to gridmap's: renames, value maps and constants.

A mapping names, for each gridmap field, where its value comes from::

    {"use": {"source": "building", "values": {"yes": "residential", "school": "school"},
             "default": "other"},
     "households": "HH",
     "kind": {"value": "health_station"}}

- a string is the source field to read (``--map households=HH``);
- ``source`` and ``values`` map the source field's values to gridmap's (a value not
  listed becomes ``default`` when one is given, else keeps the field's own value
  where the record has one, as after the built-in OSM mapping, else passes
  unchanged);
- ``value`` is a constant for every feature (``--set use=residential``).

The same document is the CLI's ``--values FILE`` (JSON or YAML) and the API
import's ``values`` parameter; ``--map``/``map`` and ``--set``/``set`` are
shorthands merged over it. Applying a mapping is pure (:func:`apply_mapping`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UNSET = object()


class MappingProblem(ValueError):
    """A field mapping that cannot be used as written."""


@dataclass(frozen=True)
class FieldRule:
    """Where one gridmap field's value comes from."""

    source: str | None = None
    values: Mapping[str, Any] | None = None
    default: Any = _UNSET
    value: Any = _UNSET

    @property
    def constant(self) -> bool:
        """Whether the rule gives the same value to every feature."""
        return self.value is not _UNSET

    def to_dict(self) -> dict[str, Any]:
        """The rule as the mapping document writes it."""
        out: dict[str, Any] = {}
        if self.constant:
            out["value"] = self.value
        if self.source is not None:
            out["source"] = self.source
        if self.values is not None:
            out["values"] = dict(self.values)
        if self.default is not _UNSET:
            out["default"] = self.default
        return out


FieldMapping = dict[str, FieldRule]


def _key(value: Any) -> str:
    """A source value as the text key of a value map (``2.0`` → ``"2"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_mapping(document: Any, where: str = "values") -> FieldMapping:
    """Read a mapping document (see the module's documentation).

    Raises
    ------
    MappingProblem
        With what is wrong and where.
    """
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise MappingProblem(f"{where} must map gridmap field names to rules")
    rules: FieldMapping = {}
    for target, rule in document.items():
        if not isinstance(target, str) or not target:
            raise MappingProblem(f"{where}: field names must be text")
        if isinstance(rule, str):
            rules[target] = FieldRule(source=rule)
            continue
        if not isinstance(rule, Mapping):
            raise MappingProblem(
                f"{where}.{target} must be a source field name or an object with "
                "'source', 'values', 'default' or 'value'"
            )
        unknown = sorted(set(rule) - {"source", "values", "default", "value"})
        if unknown:
            raise MappingProblem(f"{where}.{target}: unknown key(s) {', '.join(unknown)}")
        source = rule.get("source")
        if source is not None and not isinstance(source, str):
            raise MappingProblem(f"{where}.{target}.source must be a field name")
        values = rule.get("values")
        if values is not None:
            if not isinstance(values, Mapping):
                raise MappingProblem(
                    f"{where}.{target}.values must map source values to gridmap values"
                )
            values = {_key(k): v for k, v in values.items()}
        rules[target] = FieldRule(
            source=source,
            values=values,
            default=rule.get("default", _UNSET),
            value=rule.get("value", _UNSET),
        )
    return rules


def read_mapping_file(path: Path) -> FieldMapping:
    """A mapping document from a JSON or YAML file.

    Raises
    ------
    MappingProblem
        The file cannot be read or is no mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingProblem(f"cannot read {path}: {exc}") from exc
    if Path(path).suffix.lower() == ".json":
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise MappingProblem(f"{path} is not JSON: {exc}") from exc
    else:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingProblem(f"{path} is not YAML or JSON: {exc}") from exc
    return parse_mapping(document, where=str(path))


def pairs(items: Iterable[str], option: str, form: str = "FIELD=VALUE") -> dict[str, str]:
    """``FIELD=TEXT`` items as a dict; ``form`` names the shape in the refusal.

    Raises
    ------
    MappingProblem
        An item without ``=`` or with an empty side.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise MappingProblem(f"{option}: {item!r} is not {form}")
        out[name.strip()] = text.strip()
    return out


def build_mapping(
    document: FieldMapping | None = None,
    renames: Mapping[str, str] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> FieldMapping:
    """A mapping document with ``--map`` renames and ``--set`` constants over it."""
    rules = dict(document or {})
    for target, source in (renames or {}).items():
        old = rules.get(target, FieldRule())
        rules[target] = FieldRule(source=source, values=old.values, default=old.default)
    for target, value in (constants or {}).items():
        rules[target] = FieldRule(value=value)
    return rules


def unknown_fields(mapping: FieldMapping, fields: Sequence[str]) -> list[str]:
    """Targets of a mapping that the layer does not have."""
    return sorted(set(mapping) - set(fields))


def apply_mapping(mapping: FieldMapping, record: Mapping[str, Any]) -> dict[str, Any]:
    """One record with the mapping's fields filled in (other fields kept as they are).

    Every rule reads the record as it came, so rules never see each other's output.

    >>> rules = parse_mapping({"use": {"source": "building", "values": {"yes": "residential"}}})
    >>> apply_mapping(rules, {"building": "yes"})["use"]
    'residential'
    """
    out = dict(record)
    for target, rule in mapping.items():
        if rule.constant:
            out[target] = rule.value
            continue
        value = record.get(rule.source or target)
        if rule.values is not None and value is not None:
            key = _key(value)
            if key in rule.values:
                value = rule.values[key]
            elif rule.default is not _UNSET:
                value = rule.default
            elif rule.source not in (None, target) and record.get(target) is not None:
                # Unlisted: the field keeps the value it has (the built-in OSM mapping's).
                value = record[target]
        elif value is None and rule.default is not _UNSET:
            value = rule.default
        out[target] = value
    return out
