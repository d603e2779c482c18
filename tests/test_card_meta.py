"""Card metadata as the Hub wants it: sizes as `push_to_hub` reports them, license ids, the Hub's YAML rules
enforced by the test server (tests/hub_card_rules.py), and the pushed card naming the real repo."""

from __future__ import annotations

import shutil

import pytest
from huggingface_hub import DatasetCard, HfApi
from typer.testing import CliRunner

from cytohub import hub
from cytohub.card import card_for_repo, repo_placeholder
from cytohub.cli import app
from helpers import report
from hub_card_rules import check_card

runner = CliRunner()


def _card(folder) -> str:
    return (folder / "README.md").read_text(encoding="utf-8")


def _with_yaml(card: str, old: str, new: str) -> str:
    assert old in card, old
    return card.replace(old, new, 1)


def test_sizes_are_parquet_and_arrow_bytes(built):
    folder = built("cccid")
    info = DatasetCard.load(folder / "README.md").data.to_dict()["dataset_info"]
    parquet = sum(p.stat().st_size for p in (folder / "data").glob("*.parquet"))
    arrow = sum(s["num_bytes"] for s in report(folder)["splits"].values())
    assert info["download_size"] == parquet  # what push_to_hub reports: the Parquet files
    assert info["dataset_size"] == arrow == sum(s["num_bytes"] for s in info["splits"])
    assert parquet != sum(i["size"] for i in report(folder)["inputs"])  # not the raw download any more
    assert {s: v["parquet_bytes"] for s, v in report(folder)["splits"].items()} == {
        s: sum((folder / "data" / f).stat().st_size for f in v["shards"]) for s, v in report(folder)["splits"].items()}


def test_other_license_is_an_id_with_a_link(built):
    from cytohub import registry

    meta = DatasetCard.load(built("sipakmed") / "README.md").data.to_dict()
    assert (meta["license"], meta["license_name"]) == ("other", "sipakmed-terms")
    assert meta["license_link"] == registry.get("sipakmed").license_link
    text = _card(built("sipakmed"))
    assert registry.get("sipakmed").license_name in text  # the human-readable terms stay in the body
    ids = {n: registry.get(n).license_id for n in ("ccedd", "hicervix", "cellpose", "cx22", "sipakmed")}
    assert ids == {"ccedd": "ccedd-terms", "hicervix": "hicervix-terms", "cellpose": "cellpose-terms",
                   "cx22": "cx22-terms", "sipakmed": "sipakmed-terms"}
    assert all(registry.get(n).license == "other" for n in ids)


def test_hub_rules_accept_a_cytohub_card_and_name_each_broken_rule(built):
    card = _card(built("sipakmed"))
    assert check_card(card) == []
    cases = {
        ("license: other", "license: cc-by-4.0-or-later"): '"license" must be one of [apache-2.0',
        ("license_name: sipakmed-terms", "license_name: 'SIPaKMeD terms: free for experimental use'"):
            '"license_name" with value',
        ("license_link: ", "license_link: see the homepage #"): '"license_link" with value',
        ("- image-classification", "- cytology-classification"): '"task_categories[0]" must be one of',
        ("- n<1K", "- tiny"): '"size_categories[0]" must be one of [unknown, n<1K',
        ("  - split: train\n", "  - split: train set\n"): '"configs[0].data_files[0].split" must be a split name',
        ("config_name: default", "config_nom: default"): '"configs[0].config_name" is required',
        ("    num_examples: ", "    n_examples: "): '"dataset_info.splits[0]" must have a name',
    }
    for (old, new), message in cases.items():
        problems = check_card(_with_yaml(card, old, new))
        assert len(problems) == 1 and problems[0].startswith(message), (old, problems)
    assert check_card("---\nlicense: [mit, nope]\n---\n") == ['"license[1]" must be one of [' +
                                                           ", ".join(__import__("hub_card_rules").LICENSES) + "]"]
    assert check_card("---\n: : :\n---\n")[0].startswith("YAML metadata does not parse")
    assert check_card("no metadata at all") == []
    configs = "---\nconfigs:\n- config_name: a\n  default: true\n- config_name: a\n  default: true\n---\n"
    assert check_card(configs) == ['"configs" has duplicate config_name values',
                                   '"configs" may mark at most one config as default']
    gated = "---\nextra_gated_fields:\n  Name: text\n  Agree: slider\n---\n"
    assert check_card(gated) == ['"extra_gated_fields.Agree" must be one of [text, checkbox, date_picker, country, '
                                 'ip_location] or a select with options']


def test_the_test_server_refuses_a_bad_card_at_validate_yaml_and_at_commit(built, tmp_path, hub_repo_id,
                                                                           monkeypatch):
    api = HfApi()
    api.create_repo(hub_repo_id, repo_type="dataset")
    bad = _with_yaml(_card(built("sipakmed")), "license_name: sipakmed-terms",
                     "license_name: 'SIPaKMeD terms: free for experimental use'")
    (tmp_path / "README.md").write_text(bad)
    with pytest.raises(ValueError, match=r'Invalid metadata in README.md.\n- "license_name" with value'):
        api.upload_file(path_or_fileobj=str(tmp_path / "README.md"), path_in_repo="README.md",
                        repo_id=hub_repo_id, repo_type="dataset")
    # without the client's pre-check the commit itself is refused, as on the Hub
    monkeypatch.setattr(HfApi, "_validate_yaml", lambda self, *a, **k: None)
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="Invalid metadata in README.md"):
        api.upload_file(path_or_fileobj=str(tmp_path / "README.md"), path_in_repo="README.md",
                        repo_id=hub_repo_id, repo_type="dataset")
    assert "README.md" not in api.list_repo_files(hub_repo_id, repo_type="dataset")
    api.upload_file(path_or_fileobj=_card(built("sipakmed")).encode(), path_in_repo="README.md",
                    repo_id=hub_repo_id, repo_type="dataset")  # the real card goes through
    assert "README.md" in api.list_repo_files(hub_repo_id, repo_type="dataset")


def test_pushed_card_names_the_real_repo(built, tmp_path, hub_server, hub_repo_id, monkeypatch):
    monkeypatch.setattr(hub, "BACKOFF", 0.0)
    folder = tmp_path / "cccid"
    shutil.copytree(built("cccid"), folder)
    local = _card(folder)
    assert f"load_dataset({repo_placeholder('cccid')}," in local
    assert local.count('"ORG/cccid"') == local.count("load_dataset(") >= 1  # every loading snippet, nothing else
    result = runner.invoke(app, ["push", str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--quiet"])
    assert result.exit_code == 0, result.output
    remote = hub_server.files(hub_repo_id)["README.md"].decode()
    assert f'ds = load_dataset("{hub_repo_id}", split="train", streaming=True)' in remote
    assert "ORG/" not in remote
    assert remote == card_for_repo(local, "cccid", hub_repo_id)  # that one replacement, nothing else
    assert _card(folder) == local  # the build folder is not modified
    commits = len(hub_server.commits(hub_repo_id))
    result = runner.invoke(app, ["push", str(folder), "--repo", hub_repo_id, "--allow-synthetic", "--quiet"])
    assert result.exit_code == 0 and len(hub_server.commits(hub_repo_id)) == commits  # unchanged: no commit
