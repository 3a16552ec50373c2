//! GStreamer video frames as engine frames: formats, colorimetry, planes.

use dreamsim::{Colorimetry, Frame, PixelFormat, Plane, YuvMatrix, YuvRange};
use gst_video::prelude::*;

/// The raw formats the engine converts itself; anything else needs videoconvert.
pub const FORMATS: &[gst_video::VideoFormat] = &[
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Gray8,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Yv12,
    gst_video::VideoFormat::Nv12,
    gst_video::VideoFormat::Nv21,
];

/// The caps every pad of the element takes.
pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(FORMATS.iter().copied())
        .build()
}

/// The engine's name for a GStreamer format, if the engine takes it.
pub fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as V;
    Some(match format {
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::Argb => PixelFormat::Argb,
        V::Abgr => PixelFormat::Abgr,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Xrgb => PixelFormat::Xrgb,
        V::Xbgr => PixelFormat::Xbgr,
        V::Gray8 => PixelFormat::Gray8,
        V::I420 => PixelFormat::I420,
        V::Yv12 => PixelFormat::Yv12,
        V::Nv12 => PixelFormat::Nv12,
        V::Nv21 => PixelFormat::Nv21,
        _ => return None,
    })
}

/// The caps' colorimetry as the engine's; unknown values follow GStreamer's
/// own defaults (BT.601 up to 576 lines, BT.709 above; limited range).
pub fn colorimetry(info: &gst_video::VideoInfo) -> Colorimetry {
    use gst_video::VideoColorMatrix as M;
    let c = info.colorimetry();
    let matrix = match c.matrix() {
        M::Bt709 => YuvMatrix::Bt709,
        M::Bt601 => YuvMatrix::Bt601,
        M::Bt2020 => YuvMatrix::Bt2020,
        M::Smpte240m => YuvMatrix::Smpte240m,
        M::Fcc => YuvMatrix::Fcc,
        _ if info.height() > 576 => YuvMatrix::Bt709,
        _ => YuvMatrix::Bt601,
    };
    let range = match c.range() {
        gst_video::VideoColorRange::Range0_255 => YuvRange::Full,
        _ => YuvRange::Limited,
    };
    Colorimetry { matrix, range }
}

/// Describes a mapped GStreamer frame to the engine (no copy).
pub fn engine_frame<'a>(
    frame: &'a gst_video::VideoFrameRef<&'a gst::BufferRef>,
) -> Result<Frame<'a>, gst::ErrorMessage> {
    let info = frame.info();
    let format = pixel_format(info.format()).ok_or_else(|| {
        gst::error_msg!(
            gst::CoreError::Negotiation,
            ("Unsupported format {}", info.format().to_str())
        )
    })?;
    let n = frame.n_planes() as usize;
    let mut planes = [Plane::default(); 3];
    for (i, plane) in planes.iter_mut().enumerate().take(n) {
        let stride = usize::try_from(frame.plane_stride()[i]).map_err(|_| {
            gst::error_msg!(
                gst::StreamError::Format,
                ("Negative strides are not supported")
            )
        })?;
        let data = frame.plane_data(i as u32).map_err(|e| {
            gst::error_msg!(gst::StreamError::Format, ("Plane {i} unreadable: {e}"))
        })?;
        *plane = Plane { data, stride };
    }
    Frame::new(
        format,
        info.width() as usize,
        info.height() as usize,
        &planes[..n],
        colorimetry(info),
    )
    .map_err(|e| gst::error_msg!(gst::StreamError::Format, ("{}", e)))
}

/// Runs `f` on `buffer` seen as an engine frame laid out as `info` says
/// (mapped read-only, no copy); `None` when it does not hold such a frame
/// (or the format is not one the engine reads). The change test and the
/// corpus jobs' cut detector read frames this way, into their own buffers.
pub fn with_engine_frame<R>(
    buffer: &gst::BufferRef,
    info: &gst_video::VideoInfo,
    f: impl FnOnce(&Frame) -> R,
) -> Option<R> {
    let mapped = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).ok()?;
    let frame = engine_frame(&mapped).ok()?;
    Some(f(&frame))
}

/// The change test's thumbnail of `buffer`, a frame laid out as `info`
/// says; `None` when it does not hold such a frame (or the format is not
/// one the engine reads). Allocates a thumbnail: per-frame loops use
/// [`with_engine_frame`] with `ChangeTest::decide_frame` or
/// `CutDetector::push_frame`.
pub fn thumbnail(
    buffer: &gst::BufferRef,
    info: &gst_video::VideoInfo,
) -> Option<dreamsim::change::Thumbnail> {
    with_engine_frame(buffer, info, dreamsim::change::Thumbnail::of)
}

/// For caps that no supported format can satisfy, the message that says
/// why and what to do; `None` when the caps are fine or not raw video.
pub fn unsupported_caps_message(caps: &gst::CapsRef) -> Option<String> {
    let supported = |name: &str| FORMATS.contains(&gst_video::VideoFormat::from_string(name));
    let unsupported: Vec<&str> = caps
        .iter()
        .filter(|s| s.name() == "video/x-raw")
        .filter_map(|s| s.get::<&str>("format").ok())
        .filter(|f| !supported(f))
        .collect();
    (!unsupported.is_empty() && unsupported.len() == caps.size()).then(|| {
        format!(
            "Unsupported video format {}: dreamsim takes RGB, BGR, RGBA, BGRA, ARGB, ABGR, \
             RGBx, BGRx, xRGB, xBGR, GRAY8, I420, YV12, NV12 or NV21 in system memory; put \
             videoconvert before dreamsim",
            unsupported.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_format_maps_to_the_engine() {
        for f in FORMATS {
            assert!(pixel_format(*f).is_some(), "{f:?}");
        }
        assert!(pixel_format(gst_video::VideoFormat::Y444).is_none());
    }

    #[test]
    fn unsupported_formats_get_an_explanation() {
        gst::init().unwrap();
        let bad = gst::Caps::builder("video/x-raw")
            .field("format", "Y444")
            .build();
        assert!(unsupported_caps_message(&bad)
            .unwrap()
            .contains("videoconvert"));
        let good = gst::Caps::builder("video/x-raw")
            .field("format", "NV12")
            .build();
        assert!(unsupported_caps_message(&good).is_none());
    }
}
