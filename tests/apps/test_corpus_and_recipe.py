import pytest

from hf_geokd.apps.recipe import accumulation_for_global_batch, parse_recipe_args, yaml_to_argv
from hf_geokd.data.corpora import clean_wikitext


def test_clean_wikitext_keeps_prose_and_drops_markup():
    text = ("'''Anarchism''' is a [[political philosophy|philosophy]]{{citation needed|date=2016}}.<ref>Smith</ref>\n"
            "== History ==\n[[File:Flag.svg|thumb|A [[flag]]]]\n{| class=wikitable\n| cell\n|}\n"
            "* Item with [https://example.org a link] &amp; more")
    assert clean_wikitext(text) == "Anarchism is a philosophy.\nHistory.\nItem with a link & more"


def test_yaml_to_argv_flattens_lists_and_skips_nulls(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text("width: 128\nhook_names: [a, b]\nempty: null\nlearning_rate: 3.0e-4\n"
                      "sae_kwargs: {k: 4, use_sparse_activations: true}\n")
    assert yaml_to_argv(config) == ["--width", "128", "--hook_names", "a", "b", "--learning_rate", "0.0003",
                                    "--sae_kwargs", '{"k": 4, "use_sparse_activations": true}']  # a mapping as JSON
    config.write_text("- not\n- a mapping\n")
    with pytest.raises(ValueError, match="mapping"):
        yaml_to_argv(config)
    with pytest.raises(FileNotFoundError):
        yaml_to_argv(tmp_path / "missing.yaml")


def test_command_line_overrides_the_yaml(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Arguments:
        width: int = 1
        name: str = "x"

    config = tmp_path / "recipe.yaml"
    config.write_text("width: 128\nname: from-yaml\n")
    (args,) = parse_recipe_args((Arguments,), [str(config), "--width", "64"])
    assert args.width == 64 and args.name == "from-yaml"


def test_recipe_defaults_apply_and_reserved_flags_are_refused(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Arguments:
        device: str = "cpu"
        tokens: int = 1

    config = tmp_path / "recipe.yaml"
    config.write_text("tokens: 5\n")
    (args,) = parse_recipe_args((Arguments,), [str(config)], defaults={"device": "cuda"})
    assert args.device == "cuda" and args.tokens == 5
    with pytest.raises(ValueError, match=r"--tokens is set by this recipe \(from the blocks\): leave it out"):
        parse_recipe_args((Arguments,), [str(config)], reserved={"tokens": "from the blocks"})


def test_global_batch_sets_accumulation_or_is_refused():
    assert accumulation_for_global_batch(32, 4, 1) == 8
    assert accumulation_for_global_batch(32, 4, 8) == 1
    with pytest.raises(ValueError, match="not a multiple"):
        accumulation_for_global_batch(32, 8, 8)
