#!/usr/bin/env python3
"""The lever study behind README's lever table: the notebook's training recipe with one setting changed.

Each run trains one variant from one seed, the way the notebook does (stratified validation split, shuffled and
shifted tf.data batches, Adam with warm-up and cosine decay, label smoothing, best validation epoch kept), then
fits the temperature on validation. Validation accuracy is what choices are made on; test accuracy and the test
ECE are recorded to report, never to choose. One JSON line per run is appended to artifacts/levers.jsonl.

With --time, it trains nothing to the end: it times training steps (forward, backward and Adam's update, on the
shifted training batches) of each variant in turn, alternating between them for several rounds in one process, so
that the machine's noise falls on all of them alike, and prints the median time per step and per epoch.

Usage: .venv/bin/python scripts/lever_study.py VARIANT [VARIANT ...] [--seeds 1 2 3]
       .venv/bin/python scripts/lever_study.py --time VARIANT [VARIANT ...] [--rounds 5]
       .venv/bin/python scripts/lever_study.py --list
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent

# The notebook's recipe, as in its configuration and model cells (check_replica() holds the two together).
RECIPE = dict(conv1=16, conv2=64, dense=256, pool_first=True, dropout=0.1, epochs=5, batch=64, peak_lr=1e-2,
              warmup=True, schedule="cosine", beta_1=0.8, smoothing=0.1, shift=2)
# The study went in three rounds, each around the recipe of its time: round 1 around dropout 0.25, 6 epochs and a
# warm-up (the architecture levers of issue 13), round 2 around dropout 0.1, 6 epochs and a warm-up (the regularizers
# of issue 14, the schedule, the budget), round 3 around 5 epochs without a warm-up, which lost to the recipe above.
# A variant names every way it differs from the recipe.
ROUND2 = dict(epochs=6)
ROUND1 = dict(ROUND2, dropout=0.25)
VARIANTS = {
    "recipe": {},
    # round 1: the architecture before issue 13, and the steps from it
    "before": dict(ROUND1, conv1=32, pool_first=False),
    "conv1 32, dropout 0.25, 6 epochs, warm-up": dict(ROUND1, conv1=32),
    "dropout 0.25, 6 epochs, warm-up": dict(ROUND1),
    "dense 128, dropout 0.25, 6 epochs, warm-up": dict(ROUND1, dense=128),
    "conv1 32, dense 128, dropout 0.25, 6 epochs, warm-up": dict(ROUND1, conv1=32, dense=128),
    "dense 128, 5 epochs, dropout 0.25, warm-up": dict(ROUND1, dense=128, epochs=5),
    "dense 128, batch 128, peak lr 0.02, dropout 0.25, 6 epochs, warm-up": dict(ROUND1, dense=128, batch=128, peak_lr=2e-2),
    "dropout 0.25, no label smoothing, 6 epochs, warm-up": dict(ROUND1, smoothing=0.0),
    "dropout 0.25, no shifts, 6 epochs, warm-up": dict(ROUND1, shift=0),
    # round 2: regularizers, schedule, optimizer, budget
    "6 epochs, warm-up": dict(ROUND2),
    "no dropout, 6 epochs, warm-up": dict(ROUND2, dropout=0.0),
    "no label smoothing, 6 epochs, warm-up": dict(ROUND2, smoothing=0.0),
    "no dropout, no label smoothing, 6 epochs, warm-up": dict(ROUND2, dropout=0.0, smoothing=0.0),
    "no shifts, 6 epochs, warm-up": dict(ROUND2, shift=0),
    "6 epochs": dict(ROUND2, warmup=False),
    "constant lr 1e-3, 6 epochs": dict(ROUND2, schedule="constant", peak_lr=1e-3, warmup=False),
    "beta_1 0.9, 6 epochs, warm-up": dict(ROUND2, beta_1=0.9),
    "batch 128, peak lr 0.02, 6 epochs, warm-up": dict(ROUND2, batch=128, peak_lr=2e-2),
    "peak lr 0.005, 6 epochs, warm-up": dict(ROUND2, peak_lr=5e-3),
    "peak lr 0.02, 6 epochs, warm-up": dict(ROUND2, peak_lr=2e-2),
    # round 3: 5 epochs without a warm-up, then around the recipe
    "no warm-up": dict(warmup=False),
    "batch 128, peak lr 0.02, no warm-up": dict(batch=128, peak_lr=2e-2, warmup=False),
    "4 epochs, no warm-up": dict(epochs=4, warmup=False),
    "batch 128, peak lr 0.02": dict(batch=128, peak_lr=2e-2),
    "conv1 32 filters": dict(conv1=32),
    "dense 128": dict(dense=128),
    "no label smoothing": dict(smoothing=0.0),
    "no dropout": dict(dropout=0.0),
    "no shifts": dict(shift=0),
}


def notebook_namespace():
    """What the notebook's `library` cells define: configuration, load_mnist, prepare, reliability."""
    import contextlib, io
    cells = json.loads((ROOT / "mnist_cnn.ipynb").read_text(encoding="utf-8"))["cells"]
    namespace = {}
    os.chdir(ROOT)
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells:
            if cell["cell_type"] == "code" and "library" in cell.get("metadata", {}).get("tags", []):
                exec(compile("".join(cell["source"]), "mnist_cnn.ipynb", "exec"), namespace)
    return namespace


def build_model(conv1, conv2, dense, pool_first, dropout, **_):
    """The notebook's architecture, with its widths, block order and dropout rate as arguments."""
    import keras
    from keras import layers
    stack = [keras.Input(shape=(28, 28, 1))]
    for filters, size in [(conv1, 5), (conv2, 3)]:
        normalize = [layers.BatchNormalization(momentum=0.9), layers.ReLU()]
        pool = [layers.MaxPooling2D()]
        stack += [layers.Conv2D(filters, size, use_bias=False)] + (pool + normalize if pool_first else normalize + pool)
    stack += [layers.Flatten(), layers.Dropout(dropout), layers.Dense(dense, use_bias=False),
              layers.BatchNormalization(momentum=0.9), layers.ReLU(), layers.Dropout(dropout),
              layers.Dense(10, activation="softmax")]
    return keras.Sequential(stack)


def architecture(model):
    """Layer kinds and settings, without names: what must match between the replica and the notebook."""
    skip = {"name", "trainable", "dtype"}
    return [(type(layer).__name__, {k: v for k, v in layer.get_config().items() if k not in skip}) for layer in model.layers]


def check_replica(nb):
    """Fail if RECIPE no longer matches the notebook's configuration and model cells."""
    cells = json.loads((ROOT / "mnist_cnn.ipynb").read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "model" in c.get("metadata", {}).get("tags", []))
    namespace = dict(nb)
    exec(source.replace("model.summary()", ""), namespace)
    problems = [] if architecture(namespace["model"]) == architecture(build_model(**RECIPE)) else ["the architecture"]
    for key, name in [("epochs", "EPOCHS"), ("batch", "BATCH_SIZE"), ("peak_lr", "PEAK_LR"), ("shift", "SHIFT"),
                      ("smoothing", "LABEL_SMOOTHING")]:
        if nb[name] != RECIPE[key]:
            problems.append(f"{name} ({nb[name]} in the notebook, {RECIPE[key]} here)")
    return problems


def train(nb, seed, conv1, conv2, dense, pool_first, dropout, epochs, batch, peak_lr, warmup, schedule, beta_1,
          smoothing, shift):
    """One training run of the recipe; returns the measurements as a dict."""
    import numpy as np, keras, tensorflow as tf
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    from sklearn.model_selection import train_test_split
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    train_images, train_labels, test_images, test_labels = nb["load_mnist"](nb["DATA_PATH"])
    x_train, x_val, y_train, y_val = train_test_split(nb["prepare"](train_images), train_labels, test_size=nb["VAL_SIZE"],
                                                      stratify=train_labels, random_state=seed)
    x_test, y_test = nb["prepare"](test_images), test_labels
    augment = keras.layers.RandomTranslation(shift / 28, shift / 28, fill_mode="constant", seed=seed)
    one_hot = lambda y: keras.utils.to_categorical(y, 10).astype("float32")
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, one_hot(y_train))).shuffle(len(x_train), seed=seed).batch(batch)
    if shift:
        train_ds = train_ds.map(lambda images, labels: (augment(images, training=True), labels))
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, one_hot(y_val))).batch(1000).prefetch(tf.data.AUTOTUNE)
    model = build_model(conv1, conv2, dense, pool_first, dropout)
    steps = len(train_ds)
    if schedule == "constant":
        learning_rate = peak_lr
    elif warmup:
        learning_rate = keras.optimizers.schedules.CosineDecay(peak_lr / 100, (epochs - 1) * steps, warmup_target=peak_lr,
                                                               warmup_steps=steps)
    else:
        learning_rate = keras.optimizers.schedules.CosineDecay(peak_lr, epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=beta_1),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing), metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(train_ds, epochs=epochs, validation_data=val_ds, callbacks=[stop], shuffle=False, verbose=0)
    seconds = time.perf_counter() - start
    val_log_probs = np.log(np.maximum(model.predict(x_val, batch_size=1000, verbose=0), 1e-30))
    nll = lambda t: -log_softmax(val_log_probs / t, axis=1)[np.arange(len(y_val)), y_val].mean()
    temperature = minimize_scalar(nll, bounds=(0.05, 10), method="bounded").x
    test_probs = model.predict(x_test, batch_size=1000, verbose=0)
    calibrated = np.exp(log_softmax(np.log(np.maximum(test_probs, 1e-30)) / temperature, axis=1))
    val_accuracy = history.history["val_accuracy"]
    return {"val_acc": round(max(val_accuracy), 4), "best_epoch": int(np.argmax(val_accuracy)) + 1,
            "val_acc_per_epoch": [round(v, 4) for v in val_accuracy],
            "test_acc": round(float(np.mean(test_probs.argmax(1) == y_test)), 4),
            "test_loss_unsmoothed": round(float(-np.log(np.maximum(test_probs[np.arange(len(y_test)), y_test], 1e-30)).mean()), 4),
            "temperature": round(float(temperature), 4),
            "test_ece_raw": round(nb["reliability"](test_probs, y_test)[-1], 4),
            "test_ece_calibrated": round(nb["reliability"](calibrated, y_test)[-1], 4),
            "train_s": round(seconds, 1), "params": model.count_params()}


def time_steps(nb, names, rounds, steps=150):
    """Median milliseconds per training step of each variant, measured in alternating rounds."""
    import numpy as np, keras, tensorflow as tf
    keras.utils.set_random_seed(1)
    tf.config.experimental.enable_op_determinism()
    x, y = nb["prepare"](nb["load_mnist"](nb["DATA_PATH"])[0][:20000]), keras.utils.to_categorical(np.arange(20000) % 10, 10)
    fits, times = {}, {name: [] for name in names}
    for name in names:
        settings = {**RECIPE, **VARIANTS[name]}
        augment = keras.layers.RandomTranslation(settings["shift"] / 28, settings["shift"] / 28, fill_mode="constant", seed=1)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=1).batch(settings["batch"])
        if settings["shift"]:
            ds = ds.map(lambda images, labels: (augment(images, training=True), labels))
        ds = ds.take(steps).prefetch(tf.data.AUTOTUNE)
        model = build_model(**settings)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=settings["beta_1"]), metrics=["accuracy"],
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings["smoothing"]))
        model.fit(ds.take(10), verbose=0)  # builds and compiles the training step
        fits[name] = (model, ds, settings)
    for _ in range(rounds):
        for name, (model, ds, _) in fits.items():
            start = time.perf_counter()
            model.fit(ds, verbose=0, shuffle=False)
            times[name].append(1000 * (time.perf_counter() - start) / steps)
    for name, (_, _, settings) in fits.items():
        ms = float(np.median(times[name]))
        epoch = ms * -(-(60000 - nb["VAL_SIZE"]) // settings["batch"]) / 1000
        print(f"{name:36} {ms:6.1f} ms per step of {settings['batch']}, {epoch:5.1f} s per epoch of training steps; "
              f"rounds: {' '.join(f'{t:.1f}' for t in times[name])}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="names from --list")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument("--time", action="store_true", help="time training steps of the variants, alternating")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if args.list or not args.variants or unknown:
        print("\n".join(f"{name!r}: {changes or 'the notebook recipe'}" for name, changes in VARIANTS.items()))
        sys.exit(f"unknown variant(s): {unknown}" if unknown else 0)
    nb = notebook_namespace()
    problems = check_replica(nb)
    if problems:
        sys.exit(f"RECIPE differs from the notebook in {', '.join(problems)}: update RECIPE first")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "other"
    if args.time:
        print(f"CPU vector extensions: {cpu}; {os.cpu_count()} cores")
        return time_steps(nb, args.variants, args.rounds)
    out = ROOT / "artifacts" / "levers.jsonl"
    out.parent.mkdir(exist_ok=True)
    for name in args.variants:
        for seed in args.seeds:
            # each run in a fresh process, so that every seed starts from the same state
            code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import lever_study as s; "
                    f"nb = s.notebook_namespace(); print(json.dumps(s.train(nb, {seed}, **{{**s.RECIPE, **s.VARIANTS[{name!r}]}})))")
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"{name}, seed {seed} failed:\n{result.stderr[-2000:]}")
            row = {"variant": name, "seed": seed, "cpu": cpu, **json.loads(result.stdout.strip().splitlines()[-1])}
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
