import os
import stat

from essl_core.io import write_json


def test_records_are_written_readable_by_everyone_like_open_would(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "record.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "record.json").stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
