"""`labctl keys create`: a CURVE pair with a private secret, never overwriting an existing one."""

import stat
import subprocess
import sys

import pytest
import zmq.auth
from click.testing import CliRunner

from labctl.cli import main
from labctl.network import KeyFileError, create_keys, fingerprint, load_public, load_secret
from labctl.network.keys import load_allowed


def test_keys_create_writes_a_usable_pair_with_a_private_secret(tmp_path):
    folder = tmp_path / "new" / "keys"
    result = CliRunner().invoke(main, ["keys", "create", "edge1", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    public, secret = folder / "edge1.key", folder / "edge1.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["edge1.key", "edge1.key_secret"]  # no scratch left
    pub, sec = load_secret(secret)
    assert load_public(public) == pub and zmq.auth.load_certificate(public)[1] is None
    assert zmq.curve_public(sec) == pub  # the secret belongs to the public key
    assert fingerprint(pub) in result.output
    assert load_allowed(folder) == {pub}


def test_keys_create_refuses_to_overwrite(tmp_path):
    public, secret = create_keys("center", tmp_path)
    before = (public.read_bytes(), secret.read_bytes())
    done = subprocess.run([sys.executable, "-m", "labctl", "keys", "create", "center", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "refusing to overwrite" in done.stderr and str(public) in done.stderr
    assert (public.read_bytes(), secret.read_bytes()) == before
    secret.unlink()  # half a pair is not replaced either
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        create_keys("center", tmp_path)


@pytest.mark.parametrize("name", ["", "../edge", "a/b", ".hidden", "x" * 65])
def test_bad_key_names_are_refused(tmp_path, name):
    with pytest.raises(KeyFileError, match="key name"):
        create_keys(name, tmp_path)


def test_loading_the_wrong_or_a_missing_file_is_a_clear_error(tmp_path):
    public, _ = create_keys("edge", tmp_path)
    with pytest.raises(KeyFileError, match="no secret key"):
        load_secret(public)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_public(tmp_path / "nobody.key")
    (tmp_path / "junk.key").write_text("not a certificate\n")
    with pytest.raises(KeyFileError, match="not a CURVE certificate"):
        load_public(tmp_path / "junk.key")
