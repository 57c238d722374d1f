import os
import stat

import numpy as np
import pytest

from essl_core.io import read_npz, write_json, write_npz


def test_records_are_written_readable_by_everyone_like_open_would(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "record.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "record.json").stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_an_altered_byte_in_a_cache_is_refused_by_its_zip_checksum(tmp_path):
    # npz members carry zip's CRC-32, which Python's zipfile checks on every full read: no extra hash needed.
    arrays = {"x": np.arange(4096, dtype=np.uint8).reshape(64, 64), "y": np.arange(10)}
    write_npz(tmp_path / "c.npz", arrays, {"name": "test"})
    back, meta = read_npz(tmp_path / "c.npz")
    assert meta == {"name": "test"} and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[bytes(data).index(bytes(range(100, 116)))] ^= 0x01  # one bit inside x's bytes (stored uncompressed)
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Bad CRC-32 for file 'x.npy'"):
        read_npz(tmp_path / "c.npz")
