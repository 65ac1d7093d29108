"""Parameters: ``params.yaml`` plus a profile overlay, validated against a JSON schema.

``params.yaml`` at the repository root is the ``paper`` profile and the single source of
parameters. A profile ``<name>`` is the file ``workflow/profiles/<name>/params.yaml``, deep-merged
over it (Snakemake does the merge when the workflow profile passes it as a ``--configfile``;
:func:`load_profile` does the same for tests and benchmarks). :func:`validate_params` checks the
merged mapping against ``workflow/schemas/params.schema.yaml``, fills the schema's defaults and
raises :class:`ParamsError` naming the offending key and value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"
PROFILES_DIR = REPO_ROOT / "workflow" / "profiles"


class ParamsError(ValueError):
    """Invalid parameters: the message names the key, the value and what is allowed."""


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator so that ``default`` values are filled in (jsonschema FAQ)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # noqa: ANN001 - jsonschema signature
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overlay`` into a copy of ``base`` (mappings merge, anything else replaces).

    The same rule as Snakemake's ``update_config`` for ``--configfile``.
    """
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def validate_params(params: Mapping[str, Any], schema_path: Path = SCHEMA_PATH) -> dict[str, Any]:
    """Return a validated copy of ``params`` with the schema's defaults filled in, keys sorted at every
    level (Snakemake compares dict parameters including their key order, so reordering keys in an
    overlay, or writing it with another YAML dumper, must not re-run anything).

    Raises:
        ParamsError: listing every invalid key as ``key = value: reason``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    instance = copy.deepcopy(dict(params))
    errors = sorted(_Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)} = {e.instance!r}: {e.message}" for e in errors]
        raise ParamsError("invalid parameters (params.yaml + profile overlay):\n" + "\n".join(lines))
    data = instance["data"]
    if data["pitch_min"] > data["pitch_max"]:
        raise ParamsError(
            f"invalid parameters: data.pitch_min = {data['pitch_min']} is above "
            f"data.pitch_max = {data['pitch_max']}"
        )
    if instance["codec"]["kind"] == "dac" and instance["resample"]["target_rate"] != 44100:
        raise ParamsError(f"invalid parameters: codec.kind = 'dac' (44.1 kHz) needs resample.target_rate = "
                          f"44100, not {instance['resample']['target_rate']}")
    if instance["profile"] == "paper" and data["source"] != "nsynth":
        raise ParamsError("invalid parameters: the paper profile needs data.source = 'nsynth'")
    return _sorted_keys(instance)


def _sorted_keys(value: Any) -> Any:
    """A copy of nested dicts/lists with every dict's keys in sorted order."""
    if isinstance(value, Mapping):
        return {key: _sorted_keys(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def check_profile_overlays(profile: str, configfiles: list) -> None:
    """Check that every profile overlay given to Snakemake belongs to ``profile``.

    An overlay ``workflow/profiles/<name>/params.yaml`` that forgets ``profile: <name>`` would
    otherwise inherit ``profile: paper`` from params.yaml and write into the paper outputs.

    Raises:
        ParamsError: naming the overlay, its folder and the profile it resolved to.
    """
    for f in map(Path, configfiles):
        if f.name == "params.yaml" and f.parent.parent.name == "profiles" and f.parent.name != profile:
            raise ParamsError(f"{f}: this overlay belongs to profile {f.parent.name!r} but the parameters "
                              f"say profile = {profile!r}; set `profile: {f.parent.name}` in it "
                              f"(outputs of a profile go to data/<profile>/)")


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles that ship a ``params.yaml`` overlay."""
    return sorted(p.parent.name for p in profiles_dir.glob("*/params.yaml") if not p.parent.is_symlink())


def load_profile(name: str, root: Path = REPO_ROOT) -> dict[str, Any]:
    """Load ``root/params.yaml`` merged with profile ``name``'s overlay, validated.

    Raises:
        ParamsError: for an unknown profile (listing the known ones) or invalid parameters.
    """
    profiles_dir = Path(root) / "workflow" / "profiles"
    overlay_path = profiles_dir / name / "params.yaml"
    if not overlay_path.is_file():
        known = ", ".join(available_profiles(profiles_dir))
        raise ParamsError(f"unknown profile {name!r} (no {overlay_path}); known profiles: {known}")
    base = yaml.safe_load((Path(root) / "params.yaml").read_text()) or {}
    overlay = yaml.safe_load(overlay_path.read_text()) or {}
    merged = deep_merge(base, overlay)
    if merged.get("profile") != name:
        raise ParamsError(f"{overlay_path}: profile = {merged.get('profile')!r}, expected {name!r}")
    return validate_params(merged, Path(root) / "workflow" / "schemas" / "params.schema.yaml")
