import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hooksign import DEFAULT_COMPONENT, Signer  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def signer() -> Signer:
    assert DEFAULT_COMPONENT.exists(), f"{DEFAULT_COMPONENT} is missing: run scripts/test, which builds it"
    return Signer(DEFAULT_COMPONENT)


@pytest.fixture(scope="session")
def cli() -> Path:
    """The native `hooksign` binary that `cargo test --release` builds."""
    path = DEFAULT_COMPONENT.parents[2] / "release" / "hooksign"
    assert path.exists(), f"{path} is missing: run scripts/test, which builds it"
    return path
