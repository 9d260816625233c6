"""The reliability suite: hostile and broken inputs, kills and full disks. Every outcome must be valid data or
mnistlab's own one-line error, within a memory bound; nothing is lost and no code runs on load.

`pytest -m reliability` runs it alone; MNISTLAB_FUZZ_EXAMPLES sets how many inputs each fuzzer tries (the
long mode: 20,000 or more; CI's default is shorter)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "reliability" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def digit_png(mnist) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(255 - mnist.test_images[0]).resize((56, 56)).save(out, "PNG")
    return out.getvalue()
