"""shape-calc, params and flops through the CLI: exit codes, exact JSON, errors on stderr."""

import json
import re
import subprocess
import sys

import pytest

from convcli.cli.app import COMMANDS

from conftest import REPO, failed, run

README = REPO / "README.md"


def test_single_layer_prints_the_number():
    result = run("shape-calc", "-n", "7", "-f", "3", "-s", "2", "-p", "0")
    assert result.exit_code == 0 and result.stdout == "3\n"


def test_single_layer_json_shows_the_formula():
    data = json.loads(run("shape-calc", "-n", "224", "-f", "11", "-s", "4", "--json").stdout)
    assert data["output"] == 54 and data["dropped"] == 1
    assert data["formula"].startswith("floor((224 + 2*0 - 11) / 4) + 1 = 54")


@pytest.mark.parametrize(
    "args,out",
    [
        (["-n", "6", "-f", "2", "--pool"], "3"),
        (["-n", "5", "-f", "2", "--pool", "--ceil"], "3"),
        (["-n", "4", "-f", "2", "-s", "2", "--transposed"], "8"),
        (["-n", "7", "-f", "3", "-s", "2", "-p", "1", "--transposed", "--output-padding", "1"], "14"),
        (["-n", "224", "-f", "3", "-s", "2", "-p", "same", "--convention", "tf"], "112"),
        (["-n", "10", "-f", "3", "-d", "2"], "6"),
        (["-n", "5", "-f", "3", "-p", "full"], "7"),
    ],
)
def test_single_layer_variants(args, out):
    result = run("shape-calc", *args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == out


def test_chain_json_is_the_documented_object():
    result = run("shape-calc", "39x39x3", "conv:10,f=3", "conv:20,f=5,s=2", "conv:40,f=5,s=2", "flatten", "--json")
    data = json.loads(result.stdout)
    assert data["input"] == [39, 39, 3]
    assert data["output_shape"] == [1960]
    assert data["flatten_size"] == 1960
    assert [layer["output_shape"] for layer in data["layers"]] == [[37, 37, 10], [17, 17, 20], [7, 7, 40], [1960]]
    first = data["layers"][0]
    assert first == {
        "index": 1,
        "word": "conv:10,f=3",
        "kind": "conv",
        "input_shape": [39, 39, 3],
        "output_shape": [37, 37, 10],
        "activations": 13690,
        "params": 280,
        "trainable_params": 280,
        "macs": 37 * 37 * 10 * 27,
        "flops": 2 * 37 * 37 * 10 * 27,
        "receptive_field": 3,
        "jump": 1,
        "start": 1.5,
        "warnings": [],
    }
    assert [layer["receptive_field"] for layer in data["layers"][:3]] == [3, 7, 15]
    assert data["total"] == {
        "params": 280 + 5020 + 20040,
        "trainable_params": 25340,
        "non_trainable_params": 0,
        "macs": sum(layer["macs"] for layer in data["layers"]),
        "flops": 2 * sum(layer["macs"] for layer in data["layers"]),
        "activations": 13690 + 5780 + 1960 + 1960,
    }


def test_the_three_commands_print_the_same_object():
    args = ["32x32x3", "conv:8,f=3,p=same", "bn", "relu", "maxpool:2", "flatten", "fc:10", "--json"]
    objects = [json.loads(run(cmd, *args).stdout) for cmd in ("shape-calc", "params", "flops")]
    assert objects[0] == objects[1] == objects[2]


def test_dropped_rows_warn_on_stderr_only():
    result = run("shape-calc", "224x224x3", "conv:64,f=11,s=4")
    assert result.exit_code == 0
    assert "54.25" in result.stderr and "54.25" not in result.stdout


def test_params_keras_and_no_bias():
    keras = json.loads(run("params", "vgg16-bn", "--keras", "--json").stdout)["total"]
    assert keras["params"] == 138_365_992 + 8_448 and keras["non_trainable_params"] == 8_448
    plain = json.loads(run("params", "8x8x3", "conv:4,f=3", "flatten", "fc:2", "--no-bias", "--json").stdout)
    assert plain["total"]["params"] == 4 * 27 + 6 * 6 * 4 * 2


def test_params_table_when_piped():
    result = run("params", "lenet5")
    assert result.exit_code == 0
    assert "total params: 61,706" in result.stdout
    assert re.search(r"fc:120\s+120\s+48,120", result.stdout)


def test_params_list():
    data = json.loads(run("params", "--list", "--json").stdout)
    assert {row["name"] for row in data} >= {
        "lenet5",
        "lenet5-1998",
        "alexnet",
        "vgg16",
        "vgg16-bn",
        "resnet18",
        "resnet34",
        "resnet50",
        "googlenet",
        "mobilenet-v1",
        "mobilenet-v2",
    }


def test_flops_counts_and_says_what():
    data = json.loads(run("flops", "resnet50", "--json").stdout)
    assert data["total"]["macs"] == 4_089_184_256
    assert data["total"]["flops"] == 2 * 4_089_184_256
    assert "FLOPs = 2 x MACs" in data["flops_counted"]
    more = json.loads(run("flops", "resnet50", "--include", "all", "--json").stdout)
    assert more["total"]["flops"] > data["total"]["flops"]
    assert "residual adds" in more["flops_counted"]


def test_transposed_conv_is_counted_on_its_input():
    data = json.loads(run("flops", "4x4x64", "convT:32,f=2,s=2", "--json").stdout)
    assert data["total"]["macs"] == 4 * 4 * 64 * 32 * 4
    assert data["output_shape"] == [8, 8, 32]


def test_compare_conv():
    data = json.loads(run("flops", "compare", "28x28x192", "conv:32,f=5,p=same", "--bottleneck", "16", "--json").stdout)
    assert data["standard"]["macs"] == 120_422_400  # the course's 120M
    assert data["bottleneck"]["macs"] == 12_443_648  # and 12.4M with a 16-channel bottleneck
    assert data["standard"]["ratio"] == 1
    assert data["depthwise_separable"]["ratio"] == pytest.approx(1 / 32 + 1 / 25)
    assert data["depthwise_separable"]["closed_form"] == pytest.approx(1 / 32 + 1 / 25)
    assert set(data["bottleneck"]) >= {"params", "macs", "ratio"}


def test_compare_inception():
    data = json.loads(run("flops", "compare", "28x28x192", "inception:64,96-128,16-32,32", "--json").stdout)
    assert data["with_reductions"]["output_shape"] == data["without_reductions"]["output_shape"] == [28, 28, 256]
    assert data["with_reductions"]["macs"] < data["without_reductions"]["macs"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["shape-calc", "10x10x3", "conv:5,f=20"], 1, "larger than the padded input"),
        (["shape-calc", "10x10x3", "conv:5,f=3,s=2,p=same"], 1, "use p=tf"),
        (["shape-calc", "10x10x3", "conv:6,f=3,g=4"], 1, "groups g=4"),
        (["shape-calc", "10x10x3", "convv:3"], 1, "did you mean 'conv'"),
        (["shape-calc", "10x10x3", "maxpool:2,p=2"], 1, "more than half"),
        (["shape-calc", "10x10x3", "convT:3,s=2,op=2"], 1, "output_padding op=2"),
        (["shape-calc", "4x4x3", "conv:3,f=3", "conv:3,f=3", "conv:3,f=3"], 1, "layer 2"),
        (["shape-calc", "-n", "7", "-f", "3", "-s", "0"], 1, "s=0"),
        (["shape-calc", "-n", "-3", "-f", "3"], 1, "n=-3"),
        (["params", "resnet5"], 1, "did you mean 'resnet50'"),
        (["params", "28x28x1"], 1, "no layers"),
        (["flops", "compare", "8x8x3", "fc:3"], 1, "one ungrouped convolution"),
        (["shape-calc", "-n", "7", "-f", "x"], 2, "'-f'"),
        (["shape-calc"], 2, "give a network"),
        (["shape-calc", "--bogus"], 2, "No such option"),
        (["flops", "lenet5", "--include", "cats"], 2, "--include 'cats'"),
        # options that used to be accepted and ignored
        (["shape-calc", "-n", "7", "-f", "3", "--pool", "--transposed"], 1, "--pool and --transposed"),
        (["shape-calc", "-n", "5", "-f", "2", "--pool", "--ceil", "--transposed"], 1, "--pool and --transposed"),
        (["shape-calc", "8x8x1", "conv:3", "--input", "9x9x1"], 1, "--input 9x9x1 replaces the input"),
        (["params", "8x8x1", "conv:3", "flatten", "fc:2", "--input", "9x9x1"], 1, "their own input (8x8x1)"),
        (["flops", "8x8x1", "conv:3", "--input", "9x9x1"], 1, "--input 9x9x1"),
        (["shape-calc", "-n", "7", "-f", "3", "--input", "8x8x3"], 2, "--input does not apply to one layer"),
        (["shape-calc", "-n", "7", "-f", "3", "--expand"], 2, "--expand does not apply to one layer"),
        (["shape-calc", "lenet5", "--expand", "--json"], 2, "--expand does not apply with --json"),
        (["params", "--list", "--keras"], 2, "--keras does not apply with --list"),
        (["params", "--list", "--input", "8x8x3"], 2, "--input does not apply with --list"),
        (["params", "--list", "--no-bias"], 2, "--no-bias does not apply with --list"),
        (["params", "--list", "-e"], 2, "--expand does not apply with --list"),
        (["params", "resnet18", "-e", "--json"], 2, "--expand does not apply with --json"),
        (["flops", "compare", "8x8x3", "conv:4", "--include", "all"], 2, "--include does not apply to 'flops compare'"),
        (["flops", "compare", "8x8x3", "conv:4", "--no-bias"], 2, "--no-bias does not apply to 'flops compare'"),
        (["flops", "compare", "8x8x3", "conv:4", "--input", "9x9x3"], 2, "--input does not apply to 'flops compare'"),
        (["flops", "compare", "8x8x3", "conv:4", "-e"], 2, "--expand does not apply to 'flops compare'"),
        (["flops", "lenet5", "--no-bias"], 2, "--no-bias does not apply without --include bias"),
    ],
)
def test_bad_input_is_one_error_line(args, code, message):
    result = run(*args)
    assert result.exit_code == code
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    if code == 2:  # a usage mistake also says where the help is
        assert result.stderr.rstrip().endswith(f"see 'convcli {args[0]} -h'")


def test_every_command_has_help_with_examples_and_is_in_the_readme():
    readme = README.read_text()
    for name in COMMANDS:
        result = run(name, "--help")
        assert result.exit_code == 0 and "Examples:" in result.stdout, name
        assert f"convcli {name}" in readme, name


def test_version_and_module_entry_point():
    assert run("--version").stdout.startswith("convcli ")
    done = subprocess.run(
        [sys.executable, "-m", "convcli", "shape-calc", "-n", "7", "-f", "3", "-s", "2"], capture_output=True, text=True
    )
    assert done.stdout == "3\n"


def test_arithmetic_commands_do_not_import_numpy_or_pillow():
    code = (
        "import sys; from convcli.cli.app import app\n"
        "try:\n    app(['params', 'resnet50', '--json'])\nexcept SystemExit: pass\n"
        "assert 'numpy' not in sys.modules and 'PIL' not in sys.modules, 'heavy import'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_mistyped_command_gets_a_suggestion():
    result = run("pramas", "lenet5")
    assert result.exit_code == 2 and "did you mean 'params'?" in result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_no_arguments_still_shows_the_help():
    result = run()
    assert result.exit_code == 2 and "Commands:" in result.stdout + result.stderr


def test_no_bias_counts_in_flops_with_the_bias_adds():
    args = ["8x8x3", "conv:4,f=3", "flatten", "fc:2", "--include", "bias", "--json"]
    with_bias = json.loads(run("flops", *args).stdout)["total"]
    without = json.loads(run("flops", *args, "--no-bias").stdout)["total"]
    assert with_bias["flops"] - without["flops"] == 6 * 6 * 4 + 2 and with_bias["macs"] == without["macs"]


# a small trainable network with batch norm and a residual block
TINY = ["8x8x1", "conv:4,f=3,p=same,bias=0", "bn", "relu", "res:4", "maxpool:2", "flatten", "fc:10"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "tiny.npz"
    result = run("train", *TINY, "--epochs", 1, "-o", path)
    assert result.exit_code == 0, result.stderr
    return path


@pytest.mark.parametrize(
    "command,options", [("shape-calc", []), ("params", ["--keras"]), ("flops", ["--include", "all"])]
)
def test_a_checkpoint_shows_the_trained_network(checkpoint, command, options):
    trained = json.loads(run(command, checkpoint, *options, "--json").stdout)
    words = json.loads(run(command, *TINY, *options, "--json").stdout)
    assert trained.pop("name") == "tiny" and words.pop("name") is None
    assert trained == words
    assert run(command, checkpoint).stdout.startswith("tiny: input 8 x 8 x 1")


def test_a_checkpoint_is_drawn_as_the_network_it_trains(checkpoint, tmp_path):
    """draw takes what the other commands take: the SVG of the checkpoint is the SVG of its words
    but for the title's name."""
    assert run("draw", checkpoint, "-o", tmp_path / "ckpt.svg").exit_code == 0
    assert run("draw", *TINY, "-o", tmp_path / "words.svg").exit_code == 0
    ckpt, words = (tmp_path / "ckpt.svg").read_text(), (tmp_path / "words.svg").read_text()
    assert "tiny: " in ckpt and ckpt.count('class="shape"') == words.count('class="shape"') > 0


def test_a_checkpoint_takes_another_input_but_no_layer_words(checkpoint):
    data = json.loads(run("shape-calc", checkpoint, "--input", "16x16x1", "--json").stdout)
    assert data["input"] == [16, 16, 1] and data["flatten_size"] == 8 * 8 * 4
    assert failed(run("params", checkpoint, "relu"), "whole network")


def test_checkpoint_errors_are_one_line(tmp_path):
    assert failed(run("params", tmp_path / "missing.npz"), "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert failed(run("flops", tmp_path / "junk.npz"), "junk.npz")


def _plain_rows(text: str, numbers: int) -> tuple[list[tuple[str, str, list[str]]], dict[str, str]]:
    """A piped table: (index, layer word, last ``numbers`` cells) per row, and its footer lines
    ``key: value``."""
    rows, footer = [], {}
    for line in text.splitlines()[2:]:
        cells = line.split()
        if re.fullmatch(r"[0-9]+(\.[a-z0-9.]+)?", cells[0]) and len(cells) > numbers + 1:
            rows.append((cells[0], cells[1], cells[-numbers:]))
        elif ": " in line:
            key, _, value = line.partition(": ")
            footer[key] = value
    return rows, footer


def _number(cell: str) -> int | None:
    return None if cell == "-" else int(cell.replace(",", ""))


def _flat(layers: list[dict], prefix: str = "") -> list[tuple[str, dict]]:
    """The JSON layers in table order, numbered as the --expand table numbers them."""
    out = []
    for item in layers:
        index = f"{prefix}{item['index']}"
        out.append((index, item))
        for child in item.get("children", []):
            tag = child["branch"][0] if child["branch"] in ("body", "shortcut") else child["branch"].split()[-1]
            out += _flat(child["layers"], f"{index}.{tag}")
    return out


@pytest.mark.parametrize(
    "spec", [["lenet5-1998"], ["mobilenet-v1"], ["resnet18", "--input", "64x64x3"], ["googlenet"], TINY]
)
def test_tables_and_json_give_the_same_numbers(spec):
    for options in ([], ["--keras"]):
        data = json.loads(run("params", *spec, *options, "--json").stdout)
        text = run("params", *spec, *options, "--expand").stdout
        fixed = "non-trainable" in text.splitlines()[1]
        rows, footer = _plain_rows(text, 1 + fixed)
        layers = dict(_flat(data["layers"]))
        assert len(rows) == len(layers)
        for index, word, cells in rows:
            assert word == layers[index]["word"]
            assert _number(cells[0]) == layers[index]["trainable_params"]
            assert _number(cells[-1]) == layers[index]["params"] - layers[index]["trainable_params"] or not fixed
        total = data["total"]
        assert _number(footer["trainable params"]) == total["trainable_params"]
        assert _number(footer["non-trainable params"].split()[0]) == total["non_trainable_params"]
        assert _number(footer["total params"].split()[0]) == total["params"]
    data = json.loads(run("flops", *spec, "--include", "all", "--json").stdout)
    rows, footer = _plain_rows(run("flops", *spec, "--include", "all", "-e").stdout, 2)
    layers = dict(_flat(data["layers"]))
    assert len(rows) == len(layers)
    for index, _, (macs, flops) in rows:
        assert (_number(macs), _number(flops)) == (layers[index]["macs"], layers[index]["flops"])
    assert _number(footer["total MACs"].split()[0]) == data["total"]["macs"]
    assert _number(footer["total FLOPs"].split()[0]) == data["total"]["flops"]
    data = json.loads(run("shape-calc", *spec, "--json").stdout)
    rows, footer = _plain_rows(run("shape-calc", *spec).stdout, 4)
    assert len(rows) == len(data["layers"])
    for (_, _, (activations, rf, jump, start)), layer in zip(rows, data["layers"]):
        assert (_number(activations), _number(rf), _number(jump)) == (
            layer["activations"],
            layer["receptive_field"],
            layer["jump"],
        )
        assert start == ("-" if layer["start"] is None else f"{layer['start']:g}")
    assert footer.get("flatten size") == (None if data["flatten_size"] is None else f"{data['flatten_size']:,}")


@pytest.mark.parametrize("word", ["conv:32,f=5,p=same", "conv:64,f=3,s=2", "inception:64,96-128,16-32,32"])
def test_compare_table_and_json_agree(word):
    data = json.loads(run("flops", "compare", "28x28x192", word, "--json").stdout)
    text = run("flops", "compare", "28x28x192", word).stdout
    designs = [name for name in data if name != "input"]
    for name in designs:
        line = next(line for line in text.splitlines() if line.startswith(name.replace("_", " ") + "  "))
        *_, params, macs, ratio = line.split()
        assert (_number(params), _number(macs), ratio) == (
            data[name]["params"],
            data[name]["macs"],
            f"{data[name]['ratio']:.4f}",
        )
        assert " ".join(data[name]["layers"]) in line
    if "depthwise_separable" in data:
        closed = re.search(r"= ([0-9.]+) \(measured ([0-9.]+)\)", text)
        assert closed[1] == f"{data['depthwise_separable']['closed_form']:.5f}"
        assert closed[2] == f"{data['depthwise_separable']['ratio']:.5f}"


def test_params_memory_json_is_the_estimate():
    from convcli.networks.load import load_network
    from convcli.networks.report import analyse
    from convcli.nn.memory import estimate

    result = run("params", "mnist-resnet", "--memory", "--batch-size", "64", "--optimizer", "momentum", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    memory = estimate(analyse(load_network(["mnist-resnet"], None)), 64, "momentum")
    assert doc["total"]["training_peak_bytes"] == memory.training_peak
    assert doc["total"]["inference_peak_bytes"] == memory.inference_peak
    assert doc["total"]["optimizer_state_bytes"] == doc["total"]["gradient_bytes"]  # one copy
    assert (doc["batch_size"], doc["dtype"], doc["exact"]) == (64, "float32", True)
    top = [layer for layer in doc["layers"] if not layer["depth"]]
    assert sum(layer["kept_bytes"] for layer in top) == doc["total"]["kept_bytes"]


def test_params_memory_table_states_its_convention():
    result = run("params", "resnet50", "--memory")
    assert result.exit_code == 0, result.stderr
    assert "training step peak" in result.stdout and "float32" in result.stdout and "batch 1" in result.stdout


def test_params_memory_of_a_zoo_network_loads_no_numpy():
    """The estimate is arithmetic on shapes: a 224x224 ResNet-50 needs no numpy."""
    code = (
        "import sys\n"
        "from convcli.cli.app import main\n"
        "sys.argv = ['convcli', 'params', 'resnet50', '--memory', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'PIL'})\n"
        "assert not heavy, heavy\n"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"]["training_peak_bytes"] > 0


def test_params_memory_options_need_memory():
    result = run("params", "lenet5", "--batch-size", "8")
    assert result.exit_code == 2 and "--batch-size" in result.stderr
