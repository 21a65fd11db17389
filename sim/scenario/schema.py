"""The JSON Schema of scenario files, for editors and external validators."""

from __future__ import annotations

from typing import Any

from sim.scenario.models import Scenario


def scenario_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Workflow coordination scenario"
    return schema
