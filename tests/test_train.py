"""The training side (needs the train extra: torch, onnx); skipped cleanly without it."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from conftest import fer_csv  # noqa: E402
from fervid.analysis.classify import Classifier  # noqa: E402
from fervid.train.evaluate import evaluate, score  # noqa: E402
from fervid.train import nets  # noqa: E402
from fervid.train.export import export_onnx  # noqa: E402
from fervid.train.loop import TrainConfig, train  # noqa: E402


@pytest.mark.parametrize("arch, lo, hi", [("mini_xception", 50_000, 65_000), ("mini_xception_52", 50_000, 65_000),
                                          ("mini_xception_144", 60_000, 65_000),
                                          ("fcn", 500_000, 700_000),
                                          ("resnet_s", 500_000, 1_000_000), ("resnet_m", 2_000_000, 3_500_000),
                                          ("resnet18", 10_000_000, 12_000_000)])
def test_parameter_counts_and_shapes(arch, lo, hi):
    net = nets.build(arch)
    assert lo <= nets.count_parameters(net) <= hi
    assert net(torch.zeros(3, 1, 48, 48)).shape == (3, 7)


def test_widening_warm_start_keeps_the_function_and_trains_the_new_channels():
    torch.manual_seed(0)
    narrow = nets.build("mini_xception")
    for m in narrow.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
    wide = nets.build("mini_xception_144")
    nets.load_widened(wide, narrow.state_dict())
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(narrow.eval()(x), wide.eval()(x), atol=1e-6)
    wide.train()(x).sum().backward()
    assert wide.head.weight.grad[:, 128:].abs().sum() > 0  # the zeroed weights do learn
    with pytest.raises(ValueError, match="does not fit"):
        nets.load_widened(narrow, wide.state_dict())


@pytest.mark.parametrize("arch", ["mini_xception", "mini_xception_52", "mini_xception_144", "fcn", "resnet_s"])
def test_onnx_agrees_with_torch(tmp_path, arch):
    torch.manual_seed(0)
    net = nets.build(arch).eval()
    for p in net.modules():  # non-trivial batch-norm statistics
        if isinstance(p, torch.nn.BatchNorm2d):
            p.running_mean.uniform_(-0.5, 0.5)
            p.running_var.uniform_(0.5, 2)
    path = export_onnx(net, tmp_path / "m.onnx", {"architecture": arch})
    x = np.random.default_rng(1).integers(0, 256, (9, 48, 48)).astype(np.uint8)
    ort_p = Classifier(str(path)).predict(x)
    with torch.no_grad():
        torch_p = nets.ContractModel(net)(torch.from_numpy(x).float().unsqueeze(1)).numpy()
    assert np.abs(ort_p - torch_p).max() < 1e-4


def test_enlarged_mini_xception_takes_the_same_weights_and_48_pixel_faces():
    small, big = nets.build("mini_xception"), nets.build("mini_xception_52")
    big.load_state_dict(small.state_dict())  # a warm start from the 48-pixel network
    seen = []
    big.stem.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)) and None)
    assert big.eval()(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    assert seen == [(2, 8, 52, 52)]


def test_smoke_training_run_yields_a_contract_model_and_resumes(tmp_path):
    data = fer_csv(tmp_path / "fer.csv", {"Training": 210, "PublicTest": 35, "PrivateTest": 35})
    out = tmp_path / "m.onnx"
    cfg = TrainConfig(arch="mini_xception", data=str(data), out=str(out), epochs=1, batch_size=32, quiet=True,
                      command="pytest")
    meta = train(cfg)
    assert out.is_file() and (tmp_path / "m.ckpt" / "last.pt").is_file()
    clf = Classifier(str(out))
    assert clf.info.metadata["architecture"] == "mini_xception"
    assert clf.info.metadata["private_test_accuracy"] == meta["private_test_accuracy"]
    assert clf.info.metadata["command"] == "pytest"
    # Resuming with more epochs goes on from the checkpoint.
    cfg2 = TrainConfig(**{**cfg.__dict__, "epochs": 2, "resume": str(tmp_path / "m.ckpt" / "last.pt")})
    train(cfg2)
    log = (tmp_path / "m.ckpt" / "train.log").read_text()
    assert "resumed from" in log and "epoch   2/2" in log


def test_a_run_that_may_not_be_final_leaves_private_test_unmeasured(tmp_path):
    data = fer_csv(tmp_path / "fer.csv", {"Training": 70, "PublicTest": 14, "PrivateTest": 14})
    out = tmp_path / "m.onnx"
    meta = train(TrainConfig(arch="mini_xception", data=str(data), out=str(out), epochs=1, batch_size=32, quiet=True,
                             private_test=False))
    assert meta["private_test_accuracy"] == "not measured"
    assert Classifier(str(out)).info.metadata["private_test_accuracy"] == "not measured"
    assert "PrivateTest not measured" in (tmp_path / "m.ckpt" / "train.log").read_text()


def test_training_is_deterministic(tmp_path):
    data = fer_csv(tmp_path / "fer.csv", {"Training": 70, "PublicTest": 14, "PrivateTest": 14})
    results = []
    for run in ("a", "b"):
        cfg = TrainConfig(arch="mini_xception", data=str(data), out=str(tmp_path / run / "m.onnx"), epochs=1,
                          batch_size=16, quiet=True, seed=3)
        train(cfg)
        results.append(torch.load(tmp_path / run / "m.ckpt" / "last.pt", weights_only=False)["model"])
    for k in results[0]:
        assert torch.equal(results[0][k], results[1][k]), k


def test_evaluate_on_a_known_answer(tmp_path):
    # A model whose output is always "happy": accuracy is exactly the share of happy faces.
    data = fer_csv(tmp_path / "fer.csv", {"PrivateTest": 70})
    net = nets.build("mini_xception").eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0, 0, 0, 10.0, 0, 0, 0]))
    path = export_onnx(net, tmp_path / "happy.onnx", {"architecture": "mini_xception"})
    s, _ = evaluate(str(path), str(data), "PrivateTest")
    assert s.accuracy == pytest.approx(1 / 7)
    assert s.recall[3] == 1.0 and s.precision[3] == pytest.approx(1 / 7)
    assert s.confusion_normalised[:, 3].tolist() == [1.0] * 7


def test_score_metrics():
    s = score(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert s.accuracy == 0.75
    assert s.precision[1] == pytest.approx(2 / 3) and s.recall[0] == 0.5


def test_evaluate_cli_writes_confusion_files(tmp_path):
    from click.testing import CliRunner

    from fervid.cli import main

    data = fer_csv(tmp_path / "fer.csv", {"PrivateTest": 35})
    net = nets.build("mini_xception").eval()
    path = export_onnx(net, tmp_path / "m.onnx", {"architecture": "mini_xception"})
    res = CliRunner().invoke(main, ["evaluate", str(path), "--data", str(data), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and "macro-F1" in res.output and "crops/s at batch 64" in res.output
    rows = (tmp_path / "ev" / "confusion.csv").read_text().splitlines()
    assert len(rows) == 8 and rows[1].startswith("angry")
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000
    assert "macro-F1" in (tmp_path / "ev" / "report.txt").read_text()


def test_warm_start_with_weight_averaging_exports_the_average(tmp_path):
    data = fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14, "PrivateTest": 14})
    first = TrainConfig(arch="mini_xception", data=str(data), out=str(tmp_path / "a" / "m.onnx"), epochs=1,
                        batch_size=32, quiet=True)
    train(first)
    cfg = TrainConfig(**{**first.__dict__, "out": str(tmp_path / "b" / "m.onnx"), "ema": 0.5,
                         "init": str(tmp_path / "a" / "m.ckpt" / "best.pt")})
    meta = train(cfg)
    ckpt = torch.load(tmp_path / "b" / "m.ckpt" / "best.pt", weights_only=False)
    assert "warm start" in meta["recipe"] and "EMA 0.5" in meta["recipe"]
    assert not torch.equal(ckpt["ema"]["head.weight"], ckpt["model"]["head.weight"])
    exported = torch.load(tmp_path / "b" / "m.pt", weights_only=True)["state_dict"]
    assert torch.equal(exported["head.weight"], ckpt["ema"]["head.weight"])


def test_warm_start_widens_a_narrower_network_and_refuses_another(tmp_path):
    from fervid.errors import ModelError

    data = fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14, "PrivateTest": 14})
    first = TrainConfig(arch="mini_xception", data=str(data), out=str(tmp_path / "a" / "m.onnx"), epochs=1,
                        batch_size=32, quiet=True, private_test=False)
    train(first)
    narrow = str(tmp_path / "a" / "m.pt")
    wide = train(TrainConfig(**{**first.__dict__, "arch": "mini_xception_144", "init": narrow,
                                "out": str(tmp_path / "b" / "m.onnx")}))
    assert wide["architecture"] == "mini_xception_144" and "warm start from" in wide["recipe"]
    with pytest.raises(ModelError, match=r"--init .*m\.pt: not weights of this network .*--arch fcn"):
        train(TrainConfig(**{**first.__dict__, "arch": "fcn", "init": narrow, "out": str(tmp_path / "c" / "m.onnx")}))


def test_quantized_copy_honours_the_contract_and_stays_close_to_its_source(tmp_path):
    from fervid.train import guided
    from fervid.train.quantize import quantize

    data = fer_csv(tmp_path / "fer.csv", {"Training": 96, "PublicTest": 28, "PrivateTest": 28})
    src = tmp_path / "m.onnx"
    train(TrainConfig(arch="mini_xception", data=str(data), out=str(src), epochs=1, batch_size=32, quiet=True))
    out = tmp_path / "m_int8.onnx"
    meta = quantize(src, str(data), out, calibration=64, final=True, command="pytest")
    clf, ref = Classifier(str(out)), Classifier(str(src))
    assert clf.info.metadata["quantized_from"] == "m.onnx" and clf.info.metadata["command"] == "pytest"
    assert clf.info.metadata["private_test_accuracy"] == meta["private_test_accuracy"]
    x = np.random.default_rng(0).integers(0, 256, (32, 48, 48)).astype(np.uint8)
    p, q = clf.predict(x), ref.predict(x)
    assert p.shape == (32, 7) and np.allclose(p.sum(1), 1, atol=1e-3)
    assert np.abs(p - q).max() < 0.1
    assert guided.load_weights(out) is not None  # explain uses the source network's weights
    draft = quantize(src, str(data), tmp_path / "draft.onnx", calibration=64)
    assert draft["private_test_accuracy"] == "not measured" and draft["public_test_accuracy"] != "not measured"


@pytest.mark.parametrize("arch, head", [("mini_xception", ["/net/head/Conv", "/net/ReduceMean", "/Softmax"]),
                                        ("resnet_s", ["/net/ReduceMean", "/net/head/head.1/Gemm", "/Softmax"])])
def test_quantisation_keeps_the_first_convolution_and_the_head_in_float(tmp_path, arch, head):
    import onnx

    from fervid.train.quantize import float_nodes

    net = nets.build(arch).eval()
    export_onnx(net, tmp_path / "m.onnx", {"architecture": arch})
    nodes = float_nodes(onnx.load(str(tmp_path / "m.onnx")))
    # The class maps' convolution is head; a ResNet's last block is not (in resnet_m a fifth of the work).
    assert nodes[0] == "/net/stem/stem.0/Conv" and nodes[1:] == head


def test_distillation_with_mixup_and_erasing_trains_and_says_so(tmp_path):
    from fervid.train.loop import random_erase

    x = torch.full((64, 1, 48, 48), 7.0)
    erased = random_erase(x, 0.5, torch.Generator().manual_seed(0))
    changed = (erased != 7.0).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # about half the faces, each in one rectangle
    data = fer_csv(tmp_path / "fer.csv", {"Training": 64, "PublicTest": 14, "PrivateTest": 14})
    teacher = TrainConfig(arch="fcn", data=str(data), out=str(tmp_path / "t" / "fcn.onnx"), epochs=1,
                          batch_size=32, quiet=True)
    train(teacher)
    student = TrainConfig(arch="resnet_s", data=str(data), out=str(tmp_path / "s" / "s.onnx"), epochs=1,
                          batch_size=32, quiet=True, teacher=(str(tmp_path / "t" / "fcn.pt"),), mixup=0.2, erase=0.5,
                          teacher_mirror=True)
    meta = train(student)
    assert "distilled from fcn.pt mirror-averaged" in meta["recipe"] and "mixup 0.2" in meta["recipe"]
    once = TrainConfig(arch="mini_xception", data=str(data), out=str(tmp_path / "o" / "m.onnx"), epochs=1,
                       batch_size=32, quiet=True, teacher=(str(tmp_path / "t" / "fcn.pt"),), mixup=0.2,
                       teacher_mirror=True, teacher_once=True)
    assert "fcn.pt mirror-averaged read once" in train(once)["recipe"]
    log = tmp_path / "o" / "m.ckpt" / "train.log"
    assert log.read_text().count("the teachers read the 64 training faces once") == 1
    once.epochs, once.resume = 2, str(tmp_path / "o" / "m.ckpt" / "last.pt")
    train(once)  # resumed: the teachers' reading comes from the checkpoint folder
    assert log.read_text().count("the teachers read the 64 training faces once") == 1
    assert Classifier(str(tmp_path / "s" / "s.onnx")).info.metadata["architecture"] == "resnet_s"


def test_teachers_average_as_one_ensemble():
    import math

    from fervid.train.loop import _teacher_names, teacher_log_probs, teacher_probs_once

    torch.manual_seed(0)
    a, b = nets.build("mini_xception").eval(), nets.build("mini_xception").eval()
    x = torch.rand(5, 1, 48, 48) * 255
    off = torch.autocast("cpu", enabled=False)
    one = teacher_log_probs([a], x, 4.0, False, off)
    assert torch.allclose(teacher_log_probs([a, a], x, 4.0, False, off), one, atol=1e-6)
    with torch.no_grad():
        pa = torch.softmax(a(nets.normalise(x)) / 4, 1)
        pb = torch.softmax(b(nets.normalise(x)) / 4, 1)
        pm = torch.softmax(a(nets.normalise(x.flip(-1))) / 4, 1)
    assert torch.allclose(teacher_log_probs([a, b], x, 4.0, False, off).exp(), (pa + pb) / 2, atol=1e-6)
    mirrored = teacher_log_probs([a], x, 4.0, True, off)
    assert torch.allclose(mirrored.exp(), (pa + pm) / 2, atol=1e-6)
    assert torch.allclose(mirrored.exp().sum(1), torch.ones(5)) and not math.isnan(float(mirrored.sum()))
    once = teacher_probs_once([a, b], x[:, 0].to(torch.uint8), TrainConfig(arch="fcn", data="d", out="o"), batch=2)
    with torch.no_grad():
        qa = torch.softmax(a(nets.normalise(x.to(torch.uint8).float())) / 4, 1)
        qb = torch.softmax(b(nets.normalise(x.to(torch.uint8).float())) / 4, 1)
    assert once.shape == (5, 7) and torch.allclose(once, (qa + qb) / 2, atol=1e-6)
    assert TrainConfig(arch="fcn", data="d", out="o", teacher="t.pt").teacher == ("t.pt",)
    assert _teacher_names(("models/fcn.pt", "runs/a/resnet_s.pt")) == "fcn.pt + resnet_s.pt"
    assert _teacher_names(("models/resnet_s.pt", "runs/a/resnet_s.pt")) == "models/resnet_s.pt + runs/a/resnet_s.pt"


def test_evaluate_records_private_test_once(tmp_path):
    from click.testing import CliRunner

    from fervid.cli import main

    data = fer_csv(tmp_path / "fer.csv", {"PrivateTest": 21})
    net = nets.build("mini_xception").eval()
    path = export_onnx(net, tmp_path / "m.onnx", {"architecture": "mini_xception", "private_test_accuracy": "not measured"})
    args = ["evaluate", str(path), "--data", str(data), "--split", "PrivateTest", "--record"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert Classifier(str(path)).info.metadata["private_test_accuracy"] != "not measured"
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 2 and "measured once" in second.output


def test_mirrored_copy_equals_flip_averaging_and_is_scored_afresh(tmp_path):
    from fervid.errors import ModelError
    from fervid.train.mirror import mirror

    data = fer_csv(tmp_path / "fer.csv", {"PublicTest": 21, "PrivateTest": 21})
    net = nets.build("mini_xception").eval()
    src = export_onnx(net, tmp_path / "m.onnx", {"architecture": "mini_xception", "public_test_accuracy": "0.5"})
    meta = mirror(src, str(data), tmp_path / "m_mirror.onnx", command="pytest")
    clf, ref = Classifier(str(tmp_path / "m_mirror.onnx"), tta=True), Classifier(str(src), tta=True)
    x = np.random.default_rng(1).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    assert not clf.tta  # the graph already averages; the flag must not double the work
    assert np.abs(clf.predict(x) - ref.predict(x)).max() < 1e-5
    x_sym = np.concatenate([x[..., :24], x[..., :24][..., ::-1]], axis=2)  # symmetric faces: mirror changes nothing
    assert np.abs(clf.predict(x_sym) - Classifier(str(src)).predict(x_sym)).max() < 1e-5
    assert meta["source_public_test_accuracy"] == "0.5" and meta["private_test_accuracy"] == "not measured"
    assert clf.info.metadata["public_test_accuracy"] == meta["public_test_accuracy"] != "not measured"
    assert clf.info.metadata["command"] == "pytest" and clf.info.metadata["test_time_augmentation"] == "mirror"
    final = mirror(src, str(data), tmp_path / "m_final.onnx", final=True)
    assert final["private_test_accuracy"] != "not measured"
    with pytest.raises(ModelError, match="already averages"):
        mirror(tmp_path / "m_mirror.onnx", str(data), tmp_path / "twice.onnx")
    from click.testing import CliRunner

    from fervid.cli import main

    ok = CliRunner().invoke(main, ["mirror", str(src), "--data", str(data), "--out", str(tmp_path / "cli.onnx")])
    assert ok.exit_code == 0 and "PrivateTest not measured" in ok.output
    again = CliRunner().invoke(main, ["mirror", str(tmp_path / "cli.onnx"), "--data", str(data), "--out",
                                      str(tmp_path / "cli2.onnx")])
    assert again.exit_code == 2 and "already averages" in again.output


def test_ensemble_averages_its_members_in_one_graph(tmp_path):
    from click.testing import CliRunner

    from fervid.cli import main
    from fervid.train.ensemble import ensemble
    from fervid.train.mirror import mirror

    data = fer_csv(tmp_path / "fer.csv", {"PublicTest": 21, "PrivateTest": 21})
    torch.manual_seed(0)
    a = export_onnx(nets.build("mini_xception").eval(), tmp_path / "a.onnx",
                    {"architecture": "mini_xception", "parameters": "10", "public_test_accuracy": "0.5"})
    b = export_onnx(nets.build("fcn").eval(), tmp_path / "b.onnx", {"architecture": "fcn", "parameters": "20"})
    c = tmp_path / "c_mirror.onnx"
    mirror(b, str(data), c)
    meta = ensemble([a, b, c], str(data), tmp_path / "e.onnx", command="pytest")
    x = np.random.default_rng(2).integers(0, 256, (6, 48, 48)).astype(np.uint8)
    members = np.mean([Classifier(str(m)).predict(x) for m in (a, b, c)], 0)
    clf = Classifier(str(tmp_path / "e.onnx"))
    assert np.abs(clf.predict(x) - members).max() < 1e-5
    assert clf.info.metadata["parameters"] == "50" and "mini_xception, fcn, fcn" in clf.info.metadata["architecture"]
    assert meta["private_test_accuracy"] == "not measured" and meta["public_test_accuracy"] != "not measured"
    result = CliRunner().invoke(main, ["ensemble", str(a), "--data", str(data), "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "at least two" in result.output
