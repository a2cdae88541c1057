"""Reading a config file: its text, its one YAML document (either loader), and
errors that name the file and the field, never echoing the offending text."""

from __future__ import annotations

import pytest
import yaml

from exporter.config_file import DEFAULT_LOADER, YAML_LOADERS, ConfigError, load_yaml, read_text

LOADERS = sorted(YAML_LOADERS)


def test_libyaml_is_the_default_loader_when_present() -> None:
    assert yaml.__with_libyaml__  # PyYAML's wheels and Debian's python3-yaml have it
    assert LOADERS == ["libyaml", "python"]
    assert DEFAULT_LOADER == "libyaml"
    assert issubclass(YAML_LOADERS["libyaml"], yaml.CSafeLoader)
    assert issubclass(YAML_LOADERS["python"], yaml.SafeLoader)
    with pytest.raises(ConfigError) as err:  # libyaml's wording: load_yaml() used it
        load_yaml("redis: [\n", "c.yml")
    assert err.value.lines() == [
        "c.yml: line 2 column 1: YAML syntax error: did not find expected node content"
    ]


@pytest.mark.parametrize("loader", LOADERS)
def test_every_duplicate_key_is_reported_with_both_lines(loader: str) -> None:
    text = """\
global: {interval: 30s}
redis:
  - name: a
    address: "127.0.0.1:1"
    name: b
    heartbeats:
      - {name: hb, key: k, key: k2}
global: {interval: 5s}
"""
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "c.yml", loader=loader)
    assert err.value.lines() == [
        "c.yml: redis[0].name: duplicate key: first on line 3, again on line 5",
        "c.yml: redis[0].heartbeats[0].key: duplicate key: first on line 7 column 20, "
        "again on line 7 column 28",
        "c.yml: global: duplicate key: first on line 1, again on line 8",
    ]


@pytest.mark.parametrize("loader", LOADERS)
def test_a_duplicate_in_an_anchored_mapping_is_reported_once(loader: str) -> None:
    text = """\
redis:
  - &a {name: a, name: x, address: "127.0.0.1:1"}
  - *a
"""
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "c.yml", loader=loader)
    assert err.value.lines() == [
        "c.yml: redis[0].name: duplicate key: first on line 2 column 9, again on line 2 column 18"
    ]


@pytest.mark.parametrize("loader", LOADERS)
def test_values_python_cannot_hold_are_config_errors(loader: str) -> None:
    """Not a traceback (nor, before, a message blaming --listen)."""
    text = "global:\n  interval: " + "1" * 5000 + "\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "c.yml", loader=loader)
    assert err.value.lines() == [
        "c.yml: line 2 column 13: cannot read this value: Exceeds the limit (4300 digits) for"
        " integer string conversion: value has 5000 digits; use sys.set_int_max_str_digits()"
        " to increase the limit"
    ]


@pytest.mark.parametrize("loader", LOADERS)
def test_nesting_too_deep_is_a_config_error(loader: str) -> None:
    text = "global: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "c.yml", loader=loader)
    expected = {
        "libyaml": "c.yml: line 1 column 1008: YAML syntax error: exceeded maximum nesting depth",
        "python": "c.yml: YAML syntax error: nested too deeply",
    }
    assert err.value.lines() == [expected[loader]]


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError) as err:
        read_text("/nonexistent/config.yml")
    assert err.value.lines() == ["/nonexistent/config.yml: cannot read: No such file or directory"]
