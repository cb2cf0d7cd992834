"""Printing ``convcli features``: the prediction, each convolution's statistics and the first
layer's nearest kernels as tables (or one JSON document), and the files written on stderr."""

from __future__ import annotations

from convcli.render.emit import Table, emit, emit_json, emit_table, note

TOP = 3


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


def features_dict(result) -> dict:
    """The JSON document of ``convcli features --json`` (schema in the README)."""
    names, probs, ex = result.class_names, result.probabilities, result.explanation
    order = sorted(range(len(names)), key=lambda k: -probs[k])[:TOP]
    peak, photo_peak = ex.peak, result.peak_photo
    return {
        "model": str(result.request.model),
        "image": str(result.request.image),
        "prediction": {"class": names[result.predicted], "probability": float(probs[result.predicted])},
        "top": [{"class": names[k], "probability": float(probs[k])} for k in order],
        "files": {
            kind: [str(p) for p in paths] if kind == "maps" else str(paths[0]) for kind, paths in result.files.items()
        },
        "first_conv": {
            "layer": result.first_conv,
            "filters": [
                {
                    "filter": f.index,
                    "channel": f.channel,
                    "nearest": f.nearest.name if f.nearest else None,
                    "sign": f.nearest.sign if f.nearest else None,
                    "distance": _round(f.nearest.distance) if f.nearest else None,
                    "kernel_shape": list(f.nearest.shape) if f.nearest else None,
                }
                for f in result.filters
            ],
        },
        "layers": [
            {
                "conv": m.number,
                "path": m.path,
                "layer": m.word,
                "within": list(m.within),
                "folded": list(m.folded),
                "shape": list(m.shape),
                "mean": _round(m.mean),
                "dead": _round(m.dead),
                "dead_channels": m.dead_channels,
            }
            for m in result.maps
        ],
        "gradcam": {
            "class": names[ex.target],
            "probability": float(probs[ex.target]),
            "layer": ex.layer,
            "words": list(ex.words),
            "map_shape": list(ex.cam.shape),
            "peak_input": None if peak is None else {"x": peak[1], "y": peak[0]},
            "peak": None if photo_peak is None else {"x": photo_peak[0], "y": photo_peak[1]},
            "image_size": {"width": result.photo.shape[1], "height": result.photo.shape[0]},
        },
    }


def show_features(result, json_out: bool) -> None:
    """Tables on stdout (or the JSON document) and the files written on stderr."""
    doc = features_dict(result)
    for paths in result.files.values():
        for path in paths:
            note(f"wrote {path}")
    if json_out:
        emit_json(doc)
        return
    grad = doc["gradcam"]
    top = "  ".join(f"{t['class']} {t['probability']:.3f}" for t in doc["top"])
    size = grad["image_size"]
    if grad["peak"]:
        where = f"peak at x={grad['peak']['x']}, y={grad['peak']['y']} of {size['width']} x {size['height']}"
    elif grad["peak_input"]:
        where = "peak outside the photo (where the input is padding)"
    else:
        where = "zero everywhere (nothing in the map raises the class's score)"
    layers = Table(
        [
            ("conv", "right"),
            ("layer", "left"),
            ("shape", "left"),
            ("mean", "right"),
            ("zero", "right"),
            ("silent", "right"),
        ],
        title=f"{doc['image']}: predicted {doc['prediction']['class']}; top: {top}",
        footer=[
            "zero: the fraction of units a ReLU left at zero; silent: channels zero everywhere (- without a ReLU)",
            f"Grad-CAM for class {grad['class']} at {', '.join(grad['words'])}: {where}",
        ],
    )
    for m in doc["layers"]:
        word = " > ".join([*m["within"], ", ".join([m["layer"], *m["folded"]])])
        zero = "-" if m["dead"] is None else f"{m['dead']:.0%}"
        silent = "-" if m["dead_channels"] is None else f"{m['dead_channels']}/{m['shape'][2]}"
        layers.rows.append([str(m["conv"]), word, " x ".join(map(str, m["shape"])), f"{m['mean']:.3g}", zero, silent])
    emit_table(layers)
    emit("")
    filter_shape = list(result.filters[0].weights.shape)
    kernels = Table(
        [("filter", "right"), ("nearest kernel", "left"), ("distance", "right")],
        title=f"First convolution {doc['first_conv']['layer']}: the nearest named kernel of each filter",
        footer=[
            "distance: 1 - |cosine|, 0 when the filter is the kernel scaled (a minus: its negative); "
            "a smaller kernel is compared centred in zeros"
        ],
    )
    for f in doc["first_conv"]["filters"]:
        name = "-" if f["nearest"] is None else ("-" if f["sign"] < 0 else "") + f["nearest"]
        if f["nearest"] is not None and f["kernel_shape"] != filter_shape:
            name += " ({}x{})".format(*f["kernel_shape"])
        index = (
            str(f["filter"])
            if len({g["channel"] for g in doc["first_conv"]["filters"]}) == 1
            else f"{f['filter']}.{f['channel']}"
        )
        kernels.rows.append([index, name, "-" if f["distance"] is None else f"{f['distance']:.3f}"])
    emit_table(kernels)
