"""deploy/kubernetes: the manifests parse, probe /healthz, and carry a config that validates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.config import load_config

MANIFEST = Path(__file__).parents[2] / "deploy" / "kubernetes" / "routing.yaml"


def _docs() -> dict[str, Any]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text("utf-8"))}


def test_manifest_kinds_and_probes() -> None:
    """A ConfigMap, Secret, Deployment and Service; readiness and liveness on GET /healthz."""
    docs = _docs()
    assert set(docs) == {"ConfigMap", "Secret", "Deployment", "Service"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert container["envFrom"] == [{"secretRef": {"name": docs["Secret"]["metadata"]["name"]}}]
    assert "--host" in container["args"] and "0.0.0.0" in container["args"]


def test_configmap_config_validates_with_the_secret_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's routing.yaml is a valid config with gateway.auth, keys from the Secret."""
    docs = _docs()
    for name, value in docs["Secret"]["stringData"].items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "routing.yaml"
    path.write_text(docs["ConfigMap"]["data"]["routing.yaml"], encoding="utf-8")
    config = load_config(path)
    assert config.gateway.auth is not None  # --host 0.0.0.0 is refused without it
