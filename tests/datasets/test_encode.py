"""The dataset job's encoding step and shard writer, in-process (no worker, no database)."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from apps.core.storage import LocalStore
from apps.datasets import building, shards, tfrecord

RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
GRAY = RGB[:, :, :1].copy()


class Returns:
    """An ingestion whose ``encode_entry`` returns ``features`` as given."""

    def __init__(self, features, encoding):
        self.features, self.encoding = features, encoding

    def encode_entry(self, entry):
        return self.features, 4

    def get_encoding(self):
        return self.encoding


def encode(features, encoding, keep):
    building._init_worker(Returns(features, encoding))
    return building._encode(("entry", keep))


def pillow(array):
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


@pytest.mark.parametrize("array", [RGB, GRAY], ids=["rgb", "gray"])
@pytest.mark.parametrize("encoding", ["png", "jpg", "none", None])
@pytest.mark.parametrize("keep", [False, True])
def test_a_pillow_image_encodes_like_its_array(array, encoding, keep):
    from_array = encode(array, encoding, keep)
    from_image = encode(pillow(array), encoding, keep)
    assert from_image[0] == "ok", from_image
    assert from_image[2:] == from_array[2:]  # payload, label, (shape, dtype)
    assert from_image[4] == ([5, 7, array.shape[2]], "uint8")
    if keep or encoding is None:
        np.testing.assert_array_equal(from_image[1], array)
    else:
        assert from_image[1] is None and from_array[1] is None


def test_other_pillow_modes_are_bad_entries():
    outcome = encode(Image.new("RGBA", (3, 3)), "png", False)
    assert outcome[0] == "error" and "RGBA image" in outcome[1]


@pytest.mark.parametrize("count", [0, 1, 3, 7])
def test_tfrecord_shards_are_streamed_with_offsets_and_checksums(tmp_path, count):
    store = LocalStore(tmp_path)
    writer = shards.StageWriter(store, "p/", "train", 3, "png")
    payloads = [bytes([i]) * (10 + i) for i in range(count)]
    for i, payload in enumerate(payloads):
        writer.add(payload, i % 2)
    writer.flush()
    summary = writer.summary()
    assert summary["count"] == count
    assert [s["count"] for s in summary["shards"]] == [3] * (count // 3) + (
        [count % 3] if count % 3 else []
    )
    for n, shard in enumerate(summary["shards"]):
        expected = payloads[3 * n : 3 * n + 3]
        data = (tmp_path / "p" / shard["images"]).read_bytes()
        assert data == b"".join(tfrecord.frame(p) for p in expected)
        assert shard["images_sha256"] == hashlib.sha256(data).hexdigest()
        offsets = np.load(tmp_path / "p" / shard["index"])
        with open(tmp_path / "p" / shard["images"], "rb") as fh:
            assert [tfrecord.read_at(fh, int(o)) for o in offsets] == expected
        labels = np.load(tmp_path / "p" / shard["labels"])
        assert labels.tolist() == [i % 2 for i in range(3 * n, 3 * n + len(expected))]
