import os

import pytest

import dnnlib
from dnnlib import util

def test_easydict_attribute_access():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d == {'a': 1, 'b': 2} and d.a == 1
    del d.a
    with pytest.raises(AttributeError):
        _ = d.a

def test_construct_class_by_name_accepts_names_and_classes():
    assert util.construct_class_by_name(class_name='collections.OrderedDict', a=1) == {'a': 1}
    assert util.construct_class_by_name(class_name=dict, b=2) == {'b': 2}
    assert util.call_func_by_name(3, func_name='math.sqrt') == pytest.approx(3 ** 0.5)
    assert util.get_obj_by_name('os.path.join') is os.path.join

def test_get_obj_by_name_errors_name_the_object():
    with pytest.raises(ValueError, match='no_such_thing'):
        util.get_obj_by_name('os.no_such_thing')
    with pytest.raises(ValueError, match='nonexistent_pkg'):
        util.get_obj_by_name('nonexistent_pkg.mod.Class')

def test_open_url_local_and_file_urls(tmp_path):
    path = tmp_path / 'a b.bin'
    path.write_bytes(b'hello')
    with util.open_url(str(path)) as f:
        assert f.read() == b'hello'
    with util.open_url('file://' + str(path).replace(' ', '%20')) as f:
        assert f.read() == b'hello'
    with pytest.raises(IOError, match='no such file'):
        util.open_url(str(tmp_path / 'missing.bin'))

class FakeResponse:
    """What open_url uses of a requests response: the headers and the body in chunks."""
    def __init__(self, chunks, headers=None):
        self.chunks, self.headers = chunks, headers or {}
    def raise_for_status(self): pass
    def iter_content(self, chunk_size): yield from self.chunks
    def __enter__(self): return self
    def __exit__(self, *args): return False

def test_open_url_http_downloads_once_into_cache(tmp_path, monkeypatch):
    import requests
    calls = []

    def fake_get(self, url, timeout, stream):
        calls.append(url)
        return FakeResponse([b'pay', b'load'])

    monkeypatch.setattr(requests.Session, 'get', fake_get)
    url = 'https://example.invalid/models/net.pt'
    for _ in range(2):
        with util.open_url(url, cache_dir=str(tmp_path), verbose=False) as f:
            assert f.read() == b'payload'
    assert len(calls) == 1, 'the second open must come from the cache'
    assert any(name.endswith('_net.pt') for name in os.listdir(tmp_path))

def test_open_url_reports_failed_download(tmp_path, monkeypatch):
    import requests
    def failing_get(self, url, timeout, stream):
        raise requests.ConnectionError('unreachable')
    monkeypatch.setattr(requests.Session, 'get', failing_get)
    monkeypatch.setattr(util.time, 'sleep', lambda s: None)
    with pytest.raises(IOError, match='example.invalid.*download failed'):
        util.open_url('https://example.invalid/x.pt', cache_dir=str(tmp_path), verbose=False, num_attempts=2)

def test_open_url_bounds_the_size_of_a_download(tmp_path, monkeypatch):
    import requests
    endless = lambda: iter(lambda: b'x' * 1000, None)     # A body that never ends.
    monkeypatch.setattr(requests.Session, 'get', lambda self, url, timeout, stream: FakeResponse(endless()))
    with pytest.raises(IOError, match=r'example.invalid/x.pt: stopped after 10,000 bytes, the limit for a download'):
        util.open_url('https://example.invalid/x.pt', cache_dir=str(tmp_path), verbose=False, max_bytes=10_000)
    monkeypatch.setattr(requests.Session, 'get', lambda self, url, timeout, stream: FakeResponse([b'x'], {'Content-Length': '99999'}))
    with pytest.raises(IOError, match=r'announces 99,999 bytes, above the limit of 10,000'):
        util.open_url('https://example.invalid/y.pt', cache_dir=str(tmp_path), verbose=False, max_bytes=10_000)
    assert os.listdir(tmp_path) == [], 'nothing may be cached from a refused download'

def test_open_url_bounds_the_time_of_a_download(tmp_path, monkeypatch):
    import requests
    clock = [0.0]
    def slow_chunks():
        while True:
            clock[0] += 10
            yield b'x'
    monkeypatch.setattr(util.time, 'monotonic', lambda: clock[0])
    monkeypatch.setattr(requests.Session, 'get', lambda self, url, timeout, stream: FakeResponse(slow_chunks()))
    with pytest.raises(IOError, match=r'stopped after 1m 00s with 7 bytes received, the time limit for a download'):
        util.open_url('https://example.invalid/x.pt', cache_dir=str(tmp_path), verbose=False, max_seconds=60)
    # A server that accepts and never answers: two timed-out attempts end it, not ten.
    calls = []
    def silent(self, url, timeout, stream):
        calls.append(timeout)
        raise requests.ReadTimeout('read timed out')
    monkeypatch.setattr(requests.Session, 'get', silent)
    monkeypatch.setattr(util.time, 'sleep', lambda s: None)
    with pytest.raises(IOError, match=r'download failed after 2 attempts \(ReadTimeout: read timed out\)'):
        util.open_url('https://example.invalid/x.pt', cache_dir=str(tmp_path), verbose=False)
    assert len(calls) == 2 and all(read == util.DOWNLOAD_READ_TIMEOUT for _connect, read in calls)

def test_parse_int_list():
    assert util.parse_int_list('0,3,5-8') == [0, 3, 5, 6, 7, 8]
    for bad in ['1,,2', 'a', '5-3', '-1']:
        with pytest.raises(ValueError):
            util.parse_int_list(bad)

def test_format_time():
    assert util.format_time(5) == '5s'
    assert util.format_time(185) == '3m 05s'
    assert util.format_time(7269) == '2h 01m 09s'

def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / 'f.txt'
    util.atomic_write(str(path), b'one')
    util.atomic_write(str(path), b'two')
    assert path.read_bytes() == b'two'
    assert os.listdir(tmp_path) == ['f.txt']
    mask = os.umask(0o022)
    try:
        util.atomic_write(str(path), b'three')
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644, 'an ordinary file mode, not mkstemp 0600'
