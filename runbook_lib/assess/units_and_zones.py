"""What the spec says about units, currencies and time zones, and where its sources disagree.

Every amount the spec converts (``money``, ``convert_currency``, ``convert_amount``) has a unit
and a currency; every time it parses (``parse_datetime``, ``epoch_to_utc``) a zone. When the
sources of one target column differ, the assessment says so: the spec must convert each.
"""

from __future__ import annotations

from runbook_lib.assess.findings import Finding
from runbook_lib.assess.profiling import ColumnProfile
from runbook_lib.mapping.model import LoadedSpec, SourceMapping


def amount_units(spec: LoadedSpec, profiles: list[ColumnProfile]) -> dict[str, dict]:
    """Every source amount the spec converts: its unit (major/minor) and currency."""
    tops = {(p.system, p.table, p.column): p for p in profiles}
    units: dict[str, dict] = {}
    for target_name, _target, system, table, source in spec.sources():
        currency = _currency_of(source, system, table, tops)
        for targets_text, column in source.columns.items():
            for name, options in column.steps():
                if name not in ("money", "convert_currency", "convert_amount") or not column.inputs:
                    continue
                where = f"{system}.{table}.{column.inputs[0]}"
                units.setdefault(
                    where,
                    {
                        "unit": options.get("unit", "major"),
                        "scale": options.get("scale", 2),
                        "currency": options.get("currency", currency),
                        "targets": [],
                    },
                )
                units[where]["targets"].append(f"{target_name}.{targets_text}")
                break
    return units


def _currency_of(source: SourceMapping, system: str, table: str, tops: dict) -> str:
    currency = source.columns.get("currency")
    if currency is None:
        return "unknown"
    if currency.from_ is None:
        return str(currency.value)
    profile = tops.get((system, table, currency.inputs[0]))
    if profile is not None and profile.distinct == 1 and profile.top_values:
        return str(profile.top_values[0][0])
    return f"from column {currency.inputs[0]}"


def time_zones(spec: LoadedSpec) -> dict[str, str]:
    """Every source time the spec converts, and the zone it is read in."""
    zones: dict[str, str] = {}
    for _target_name, _target, system, table, source in spec.sources():
        for column in source.columns.values():
            for name, options in column.steps():
                if name == "parse_datetime" and column.inputs:
                    zones[f"{system}.{table}.{column.inputs[0]}"] = f"{options['tz']} (local text)"
                elif name == "epoch_to_utc" and column.inputs:
                    zones[f"{system}.{table}.{column.inputs[0]}"] = "UTC (epoch seconds)"
    return zones


def mixed_findings(spec: LoadedSpec, units: dict, zones: dict, row_counts: dict) -> list[Finding]:
    """Target columns fed in different units, currencies or time zones by their sources."""
    feeds: dict[tuple[str, str, str], dict[str, tuple[str, str]]] = {}
    for target_name, _target, system, table, source in spec.sources():
        for targets_text, column in source.columns.items():
            if not column.inputs:
                continue
            where = f"{system}.{table}.{column.inputs[0]}"
            target_column = targets_text.split(",")[0].strip()
            for rule, inventory in (("mixed_amount_units", units), ("mixed_time_zones", zones)):
                if where in inventory:
                    kind = inventory[where]
                    if isinstance(kind, dict):
                        kind = f"{kind['currency']} {kind['unit']}"
                    place = feeds.setdefault((rule, target_name, target_column), {})
                    place[where] = (kind, f"{system}.{table}")
    findings = []
    for (rule, target_name, target_column), sources in feeds.items():
        kinds = {kind for kind, _ in sources.values()}
        if len(kinds) < 2:
            continue
        first = next(iter(sources.values()))[0]
        differing = sum(row_counts.get(t, 0) for kind, t in sources.values() if kind != first)
        what = "units or currencies" if rule == "mixed_amount_units" else "time zones"
        findings.append(
            Finding(
                rule,
                "warning" if rule == "mixed_amount_units" else "info",
                "+".join(dict.fromkeys(where.split(".")[0] for where in sources)),
                target_name,
                target_column,
                differing,
                f"{len(kinds)} {what} feed {target_name}.{target_column}; the spec converts "
                f"each ({differing:,} rows differ from the first source)",
                breakdown={where: kind for where, (kind, _) in sources.items()},
            )
        )
    return findings
