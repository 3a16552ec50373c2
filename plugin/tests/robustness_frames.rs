//! Robustness catalogue, frames: extreme sizes in every format the element
//! takes, caps that change on every buffer, padded strides, and buffers too
//! short for their caps. Frames in = frames out, with a finite meta on every
//! analysed frame; a buffer that cannot hold its frame is a StreamError.

use dreamsim_testsupport as common;
mod plugin_common;

use gst::prelude::*;
use gstdreamsim::meta::DreamSimMeta;
use plugin_common::*;

const FORMATS: &[&str] = &[
    "RGB", "BGR", "RGBA", "BGRA", "ARGB", "ABGR", "RGBx", "BGRx", "xRGB", "xBGR", "GRAY8", "I420",
    "YV12", "NV12", "NV21",
];

fn harness() -> FilterHarness {
    FilterHarness::new(
        "dreamsim",
        &[
            (
                "model-location",
                &common::fixture("tiny_ensemble.onnx").display().to_string(),
            ),
            ("execution-provider", "cpu"),
            ("threads", "1"),
            ("post-messages", "false"),
        ],
        |pts| pts.mseconds(),
    )
}

/// A buffer of the right size for `info`, filled with a byte pattern.
fn frame(info: &gst_video::VideoInfo, seed: u8, n: u64) -> gst::Buffer {
    let data: Vec<u8> = (0..info.size())
        .map(|i| (i as u64 * 131 + u64::from(seed) * 17) as u8)
        .collect();
    let mut buffer = gst::Buffer::from_mut_slice(data);
    let b = buffer.get_mut().unwrap();
    b.set_pts(ms(n));
    b.set_duration(ms(1));
    buffer
}

fn caps(format: &str, width: u32, height: u32) -> String {
    format!("video/x-raw,format={format},width={width},height={height},framerate=25/1")
}

fn info(caps_str: &str) -> gst_video::VideoInfo {
    gst_video::VideoInfo::from_caps(&caps_str.parse::<gst::Caps>().unwrap()).unwrap()
}

/// Pulls `n` buffers and returns their metas, checking each is there and finite.
fn pull_metas(h: &mut gst_check::Harness, n: usize) -> Vec<DreamSimMeta> {
    (0..n)
        .map(|i| {
            let out = h.pull().unwrap_or_else(|e| panic!("buffer {i}: {e:?}"));
            let m = DreamSimMeta::from_buffer(&out)
                .unwrap_or_else(|| panic!("buffer {i} has no meta"))
                .unwrap();
            assert!(m.embedding.iter().all(|v| v.is_finite()));
            assert!(m.distance.is_none_or(f64::is_finite));
            m
        })
        .collect()
}

#[test]
fn extreme_sizes_in_every_format() {
    // 1 x 1, very wide, very tall, odd, and a large frame that is still fast.
    let sizes = [(1, 1), (4096, 2), (2, 4096), (3, 1001), (1920, 1080)];
    let mut f = harness();
    let mut sent = 0;
    for format in FORMATS {
        for &(w, h) in &sizes {
            let c = caps(format, w, h);
            f.h.set_src_caps_str(&c);
            f.h.push(frame(&info(&c), sent as u8, sent))
                .unwrap_or_else(|e| {
                    panic!("{format} {w}x{h}: {e:?}");
                });
            let m = pull_metas(&mut f.h, 1).pop().unwrap();
            assert_eq!(m.frame, sent, "{format} {w}x{h}");
            sent += 1;
        }
    }
    assert_eq!(sent as usize, FORMATS.len() * sizes.len());
    assert!(f.h.try_pull().is_none());
}

#[test]
fn caps_that_change_on_every_buffer() {
    let mut f = harness();
    let n = 30u64;
    for i in 0..n {
        let format = FORMATS[i as usize % FORMATS.len()];
        let c = caps(format, 16 + (i as u32 * 7) % 50, 9 + (i as u32 * 5) % 40);
        f.h.set_src_caps_str(&c);
        f.h.push(frame(&info(&c), i as u8, i)).unwrap();
    }
    let metas = pull_metas(&mut f.h, n as usize);
    assert_eq!(
        metas.iter().map(|m| m.frame).collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    assert!(metas[1..].iter().all(|m| m.distance.is_some()));
}

#[test]
fn padded_strides_give_the_same_embedding_as_the_default_stride() {
    let mut f = harness();
    let (w, h) = (37usize, 23usize);
    let c = caps("RGB", w as u32, h as u32);
    f.h.set_src_caps_str(&c);
    let rgb = common::pattern_rgb(w, h, 5, 0, 0);
    // The caps' own layout (rows of 111 bytes padded to 112), then rows
    // padded to 200 bytes described by a VideoMeta.
    let rows = |stride: usize| {
        let mut data = vec![0xAAu8; stride * h];
        for y in 0..h {
            data[y * stride..y * stride + w * 3].copy_from_slice(&rgb[y * w * 3..(y + 1) * w * 3]);
        }
        data
    };
    let default_stride = info(&c).stride()[0] as usize;
    let mut plain = gst::Buffer::from_mut_slice(rows(default_stride));
    plain.get_mut().unwrap().set_pts(ms(0));
    let mut padded = gst::Buffer::from_mut_slice(rows(200));
    {
        let b = padded.get_mut().unwrap();
        b.set_pts(ms(1));
        gst_video::VideoMeta::add_full(
            b,
            gst_video::VideoFrameFlags::empty(),
            gst_video::VideoFormat::Rgb,
            w as u32,
            h as u32,
            &[0],
            &[200],
        )
        .unwrap();
    }
    f.h.push(plain).unwrap();
    f.h.push(padded).unwrap();
    let metas = pull_metas(&mut f.h, 2);
    assert_eq!(metas[0].embedding, metas[1].embedding);
    assert!(metas[1].distance.unwrap().abs() < 1e-6);
}

#[test]
fn buffers_too_short_for_their_caps_are_a_stream_error() {
    for size in [0usize, 10, 4 * 4 * 3 - 1] {
        let mut f = harness();
        f.h.set_src_caps_str(&caps("RGB", 4, 4));
        let mut b = gst::Buffer::from_mut_slice(vec![7u8; size]);
        b.get_mut().unwrap().set_pts(ms(0));
        // The streaming thread queues it; the error comes from the model thread.
        let _ = f.h.push(b);
        let msg = f
            .bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
            .unwrap_or_else(|| panic!("{size} bytes: no error"));
        let gst::MessageView::Error(e) = msg.view() else {
            unreachable!()
        };
        assert_eq!(
            e.error().kind::<gst::StreamError>(),
            Some(gst::StreamError::Format),
            "{size} bytes: {}",
            e.error()
        );
        let text = e.error().to_string();
        assert!(
            text.contains(&format!(
                "Buffer of {size} bytes does not hold a 4x4 RGB frame"
            )),
            "{text}"
        );
        assert!(
            f.h.try_pull().is_none(),
            "{size} bytes: a broken frame left"
        );
    }
}

/// The same through a real pipeline fed by `appsrc`, as an application
/// would: whole frames pass, then an empty buffer ends the stream with the
/// error from `dreamsim`.
#[test]
fn an_empty_buffer_from_appsrc_is_a_stream_error_after_the_good_frames() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=4,height=4,framerate=25/1 \
         ! dreamsim name=d model-location={} execution-provider=cpu threads=1 ! fakesink",
        common::fixture("tiny_ensemble.onnx").display()
    ))
    .unwrap();
    let src = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    for (i, size) in [48usize, 48, 0].into_iter().enumerate() {
        let mut b = gst::Buffer::from_mut_slice(vec![i as u8 * 50; size]);
        b.get_mut().unwrap().set_pts(ms(40 * i as u64));
        src.push_buffer(b).unwrap();
    }
    let _ = src.end_of_stream();
    let out = run_outcome(pipeline);
    let e = out.error.expect("an error");
    assert_eq!(e.src, "d");
    assert_eq!(
        e.error.kind::<gst::StreamError>(),
        Some(gst::StreamError::Format)
    );
    assert!(
        e.text()
            .contains("Buffer of 0 bytes does not hold a 4x4 RGB frame"),
        "{}",
        e.text()
    );
    let frames: Vec<u64> = out.messages.iter().map(|m| m.frame).collect();
    assert_eq!(frames, [0, 1], "the two whole frames were analysed first");
}
