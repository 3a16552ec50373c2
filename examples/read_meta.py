#!/usr/bin/env python3
"""Reading DreamSimMeta and the plugin's bus messages from Python (PyGObject).

    videotestsrc ! videoconvert ! dreamsim post-messages=true ! dreamsimscene ! fakesink

A pad probe on the sink reads each buffer's DreamSimMeta (a GStreamer custom
meta: buffer.get_custom_meta("DreamSimMeta").get_structure()); the bus loop
reads the `dreamsim` and `dreamsim-scene` element messages. The field names
are those of the README's meta and message schema.

Needs PyGObject with GStreamer's introspection data (Debian: apt-get install
python3-gi gir1.2-gstreamer-1.0) and the plugin on GStreamer's path:

    cargo build --release -p gst-plugin-dreamsim
    GST_PLUGIN_PATH=target/release python3 examples/read_meta.py \\
        --model tests/fixtures/tiny_ensemble.onnx --frames 5
"""

import argparse
import array
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


# The probe runs on GStreamer's streaming thread, the bus loop on the main
# thread: one line at a time.
_print_lock = threading.Lock()


def say(line):
    with _print_lock:
        print(line, flush=True)


def fields(structure):
    """A GstStructure's fields as a dict (absent optional fields stay absent)."""
    return {structure.nth_field_name(i): structure.get_value(structure.nth_field_name(i))
            for i in range(structure.n_fields())}


def on_buffer(pad, info):
    buffer = info.get_buffer()
    meta = buffer.get_custom_meta("DreamSimMeta")
    if meta is None:
        # interval > 1 lets buffers through without a meta.
        say(f"meta: pts {buffer.pts}: not analysed")
        return Gst.PadProbeReturn.OK
    s = meta.get_structure()
    # The embedding is a GBytes of native-endian float32.
    embedding = array.array("f", s.get_value("embedding").get_data())
    norm = sum(v * v for v in embedding) ** 0.5
    distance = s.get_value("distance") if s.has_field("distance") else None
    scene = s.get_value("scene-index") if s.has_field("scene-index") else None
    say(f"meta: frame {s.get_value('frame')} at pts {buffer.pts}: distance "
          f"{'none (first frame)' if distance is None else f'{distance:.6f}'}, embedding of "
          f"{len(embedding)} values (norm {norm:.3f}), model {s.get_value('model')}, scene {scene}")
    return Gst.PadProbeReturn.OK


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="DreamSim ONNX model (default: the element's)")
    parser.add_argument("--frames", type=int, default=10, help="frames of videotestsrc")
    args = parser.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"videotestsrc num-buffers={args.frames} pattern=ball ! "
        "video/x-raw,width=320,height=240 ! videoconvert ! "
        "dreamsim name=dreamsim post-messages=true ! dreamsimscene ! fakesink name=sink")
    if pipeline is None or pipeline.get_by_name("dreamsim") is None:
        sys.exit("read_meta.py: no dreamsim element: is the plugin on GST_PLUGIN_PATH?")
    if args.model:
        pipeline.get_by_name("dreamsim").set_property("model-location", args.model)
    sink_pad = pipeline.get_by_name("sink").get_static_pad("sink")
    sink_pad.add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    status = 0
    while True:
        msg = bus.timed_pop(Gst.CLOCK_TIME_NONE)
        if msg.type == Gst.MessageType.EOS:
            break
        if msg.type == Gst.MessageType.ERROR:
            error, debug = msg.parse_error()
            print(f"read_meta.py: error: {error.message} ({debug})", file=sys.stderr)
            status = 1
            break
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.get_name() in ("dreamsim", "dreamsim-scene"):
                f = fields(s)
                say(f"message {s.get_name()}: " +
                    ", ".join(f"{k}={v}" for k, v in sorted(f.items())))
    pipeline.set_state(Gst.State.NULL)
    return status


if __name__ == "__main__":
    sys.exit(main())
