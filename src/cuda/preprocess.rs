//! The GPU preprocessor: frames in system memory through a pinned staging
//! buffer to the device, then the kernels of `kernels.cu` into the planar
//! `f32` model input, all on one CUDA stream.

use std::fmt;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaEvent, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig,
    PinnedHostSlice, PushKernelArg,
};

use super::kernels::{kernels_for, Kernels};
use super::plan::{
    launches, planar_launch, rgb_len, DeviceFrame, HorizontalArgs, InputLayout, Launch, PlanarArgs,
    ResizeTables, VerticalArgs, WorkBuffers, YuvArgs,
};
use super::CudaError;
use crate::frame::Frame;

// SAFETY: #[repr(C)] structs of plain 8-byte fields, the same layout as the
// kernel parameters in kernels.cu; they are passed by value.
unsafe impl DeviceRepr for YuvArgs {}
unsafe impl DeviceRepr for HorizontalArgs {}
unsafe impl DeviceRepr for VerticalArgs {}
unsafe impl DeviceRepr for PlanarArgs {}

/// Staging grows in steps of this many bytes, so that a stream whose frame
/// size wobbles (a cropping element upstream) does not reallocate each time.
const STAGING_GRANULE: usize = 1 << 20;

/// A device buffer that only grows.
struct Grow<T> {
    slice: Option<CudaSlice<T>>,
}

impl<T: DeviceRepr> Grow<T> {
    fn new() -> Self {
        Self { slice: None }
    }

    /// The address of a buffer of at least `len` elements (0 when `len` is 0).
    fn ensure(&mut self, stream: &Arc<CudaStream>, len: usize) -> Result<u64, CudaError> {
        if len == 0 {
            return Ok(0);
        }
        if self.slice.as_ref().is_none_or(|s| s.len() < len) {
            // The old buffer is freed in stream order, after the work that
            // uses it.
            self.slice = None;
            // SAFETY: every byte a kernel reads from these buffers was written
            // by an earlier kernel or copy of the same frame.
            let slice = unsafe { stream.alloc::<T>(len) }
                .map_err(|e| CudaError::allocation("device memory", e))?;
            self.slice = Some(slice);
        }
        Ok(self.address(stream))
    }

    fn address(&self, stream: &Arc<CudaStream>) -> u64 {
        self.slice.as_ref().map_or(0, |s| s.device_ptr(stream).0)
    }

    fn slice(&self) -> Option<&CudaSlice<T>> {
        self.slice.as_ref()
    }
}

/// PIL-exact DreamSim preprocessing on a CUDA device.
///
/// Gives the same resized image as [`crate::Preprocessor::resize`] byte for
/// byte and the same model input bit for bit, for every format (the YUV
/// conversion is evaluated in the same f64 operations as the CPU's). All work
/// is queued on one stream; buffers are kept and only grow, the coefficient
/// tables are uploaded once per input size, so a steady stream of frames
/// allocates nothing.
pub struct GpuPreprocessor {
    size: usize,
    device_id: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    kernels: Arc<Kernels>,
    /// The tables of the last input size and their device copy (`None` for a
    /// same-size frame, whose tables are empty).
    tables: Option<(ResizeTables, Option<CudaSlice<i32>>)>,
    staging: Option<PinnedHostSlice<u8>>,
    /// Recorded after each upload out of `staging`; waited on before the
    /// host writes into it again.
    staging_free: CudaEvent,
    input: Grow<u8>,
    rgb: Grow<u8>,
    intermediate: Grow<u8>,
    resized: Grow<u8>,
    output: Grow<f32>,
}

impl fmt::Debug for GpuPreprocessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuPreprocessor")
            .field("size", &self.size)
            .field("device_id", &self.device_id)
            .field(
                "input_size",
                &self.tables.as_ref().map(|(t, _)| t.plan().input_size()),
            )
            .finish_non_exhaustive()
    }
}

impl GpuPreprocessor {
    /// A preprocessor for a `size` x `size` model input on CUDA device
    /// `device_id`: loads the driver, compiles the kernels with NVRTC (once
    /// per process) and creates the stream.
    ///
    /// Fails, without panicking, where there is no NVIDIA driver, no such
    /// device or no NVRTC library.
    pub fn new(device_id: usize, size: usize) -> Result<Self, CudaError> {
        super::catch_panics(|| Self::create(device_id, size))
    }

    fn create(device_id: usize, size: usize) -> Result<Self, CudaError> {
        super::driver_present()?;
        let ctx = CudaContext::new(device_id)
            .map_err(|e| CudaError::driver("opening the CUDA device", e))?;
        // All our work is on one stream and every buffer is addressed by raw
        // pointer inside the kernel argument structs, so cudarc's per-buffer
        // events would track nothing; ordering comes from the stream, and the
        // hand-over to ONNX Runtime is a stream synchronisation.
        // SAFETY: see above; nothing of ours is used on another stream.
        unsafe { ctx.disable_event_tracking() };
        let kernels = kernels_for(&ctx)?;
        let stream = ctx
            .new_stream()
            .map_err(|e| CudaError::driver("creating a stream", e))?;
        let staging_free = ctx
            .new_event(None)
            .map_err(|e| CudaError::driver("creating an event", e))?;
        Ok(Self {
            size,
            device_id,
            ctx,
            stream,
            kernels,
            tables: None,
            staging: None,
            staging_free,
            input: Grow::new(),
            rgb: Grow::new(),
            intermediate: Grow::new(),
            resized: Grow::new(),
            output: Grow::new(),
        })
    }

    /// Side of the square output.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The CUDA device ordinal.
    pub fn device_id(&self) -> usize {
        self.device_id
    }

    /// The device's name, as the driver reports it.
    pub fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_else(|e| format!("unknown ({e})"))
    }

    /// What the kernels were loaded as (CUBIN for the device, or PTX).
    pub fn kernel_target(&self) -> super::kernels::Target {
        self.kernels.target()
    }

    /// The stream all the work is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Preprocesses `frame` into this preprocessor's own output buffer (read
    /// it with [`download_output`](Self::download_output)). Asynchronous:
    /// returns once the work is queued.
    pub fn process(&mut self, frame: &Frame<'_>) -> Result<(), CudaError> {
        let len = 3 * self.size * self.size;
        let out = self.output.ensure(&self.stream, len)?;
        // SAFETY: `out` holds 3 * size * size floats on this device.
        unsafe { self.process_to(frame, out) }
    }

    /// Uploads `frame` and queues its preprocessing, writing the planar model
    /// input (`3 * size * size` f32) at device address `planar`.
    ///
    /// # Safety
    /// `planar` must address `3 * size * size` writable f32 on this
    /// preprocessor's device that stay allocated until the stream has run.
    pub unsafe fn process_to(&mut self, frame: &Frame<'_>, planar: u64) -> Result<(), CudaError> {
        super::catch_panics(|| {
            // The element may call from another thread than the one that
            // made the preprocessor; the raw driver calls need the context
            // current.
            self.ctx
                .bind_to_thread()
                .map_err(|e| CudaError::driver("making the CUDA context current", e))?;
            let layout = InputLayout::of(frame);
            let input = self.upload(frame, &layout)?;
            let device_frame = layout.device_frame(frame, input);
            // SAFETY: forwarded from the caller; `device_frame` addresses the
            // copy just queued.
            unsafe { self.queue(&device_frame, None, planar) }
        })
    }

    /// Uploads `frame` and queues its resize, writing the resized packed
    /// RGB image (`3 * size * size` bytes) at device address `resized`; no
    /// model input is written (see
    /// [`planar_from_resized`](Self::planar_from_resized)).
    ///
    /// # Safety
    /// `resized` must address `3 * size * size` writable bytes on this
    /// preprocessor's device that stay allocated until the stream has run.
    pub unsafe fn resize_into(&mut self, frame: &Frame<'_>, resized: u64) -> Result<(), CudaError> {
        super::catch_panics(|| {
            self.ctx
                .bind_to_thread()
                .map_err(|e| CudaError::driver("making the CUDA context current", e))?;
            let layout = InputLayout::of(frame);
            let input = self.upload(frame, &layout)?;
            let device_frame = layout.device_frame(frame, input);
            // SAFETY: forwarded from the caller; `device_frame` addresses the
            // copy just queued.
            unsafe { self.queue(&device_frame, Some(resized), 0) }
        })
    }

    /// [`resize_into`](Self::resize_into) for a frame already in device memory.
    ///
    /// # Safety
    /// As [`process_device_frame`](Self::process_device_frame) for `frame`,
    /// and as [`resize_into`](Self::resize_into) for `resized`.
    pub unsafe fn resize_device_frame_into(
        &mut self,
        frame: &DeviceFrame,
        resized: u64,
    ) -> Result<(), CudaError> {
        // SAFETY: forwarded from the caller.
        super::catch_panics(|| unsafe { self.queue(frame, Some(resized), 0) })
    }

    /// Queues the planar model input (`3 * size * size` f32 at `planar`) of
    /// a resized packed RGB image at `resized`.
    ///
    /// # Safety
    /// Both must address buffers of those sizes on this preprocessor's
    /// device, allocated until the stream has run; `resized` written by
    /// earlier work on this stream.
    pub unsafe fn planar_from_resized(
        &mut self,
        resized: u64,
        planar: u64,
    ) -> Result<(), CudaError> {
        super::catch_panics(|| {
            self.ctx
                .bind_to_thread()
                .map_err(|e| CudaError::driver("making the CUDA context current", e))?;
            self.launch(&planar_launch(resized, self.size, planar))
        })
    }

    /// Copies `frame` into the staging buffer and queues its upload into
    /// `input`; returns the device address of the copy.
    fn upload(&mut self, frame: &Frame<'_>, layout: &InputLayout) -> Result<u64, CudaError> {
        let len = layout.total_len();
        // The previous upload must have left the staging buffer before the
        // host writes over it.
        self.staging_free
            .synchronize()
            .map_err(|e| CudaError::driver("waiting for the previous upload", e))?;
        if self.staging.as_ref().is_none_or(|s| s.len() < len) {
            self.staging = None;
            // SAFETY: the bytes are written below before they are read.
            let staging = unsafe {
                self.ctx
                    .alloc_pinned::<u8>(len.next_multiple_of(STAGING_GRANULE))
            }
            .map_err(|e| CudaError::allocation("pinned host memory", e))?;
            self.staging = Some(staging);
        }
        let input = self.input.ensure(&self.stream, len)?;
        let staging = self.staging.as_mut().expect("allocated above");
        let host = staging
            .as_mut_slice()
            .map_err(|e| CudaError::driver("mapping the staging buffer", e))?;
        layout.fill(frame, &mut host[..len]);
        // SAFETY: `input` holds at least `len` bytes; `host` is page-locked,
        // so the copy is a DMA that runs in stream order, and the event
        // recorded after it keeps the host from overwriting it early.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(input, &host[..len], self.stream.cu_stream())
        }
        .map_err(|e| CudaError::driver("queueing the upload", e))?;
        self.staging_free
            .record(&self.stream)
            .map_err(|e| CudaError::driver("recording the upload", e))?;
        Ok(input)
    }

    /// Queues the preprocessing of a frame already in device memory on this
    /// preprocessor's device, writing the planar model input at `planar`.
    ///
    /// # Safety
    /// Every plane of `frame` must be readable device memory of the size its
    /// format, dimensions and strides imply, staying valid (and unchanged)
    /// until the stream has run; `planar` as for
    /// [`process_to`](Self::process_to).
    pub unsafe fn process_device_frame(
        &mut self,
        frame: &DeviceFrame,
        planar: u64,
    ) -> Result<(), CudaError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.queue(frame, None, planar) }
    }

    /// Queues the launches for `frame`: the resized image into `resized`
    /// (this preprocessor's own buffer when `None`) and the model input into
    /// `planar` (none when 0).
    ///
    /// # Safety
    /// As [`process_device_frame`](Self::process_device_frame); `resized`,
    /// when given, as [`resize_into`](Self::resize_into) says.
    unsafe fn queue(
        &mut self,
        frame: &DeviceFrame,
        resized: Option<u64>,
        planar: u64,
    ) -> Result<(), CudaError> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| CudaError::driver("making the CUDA context current", e))?;
        let (w, h) = (frame.width, frame.height);
        if self
            .tables
            .as_ref()
            .is_none_or(|(t, _)| t.plan().input_size() != (w, h))
        {
            let tables = ResizeTables::new(w, h, self.size);
            // The upload is queued on the stream, so kernels of earlier frames
            // that read the old tables have run by the time it lands, and
            // the old tables are freed in stream order. A same-size frame has
            // no tables (and no kernel reads them).
            let device = if tables.packed().is_empty() {
                None
            } else {
                Some(
                    self.stream
                        .clone_htod(tables.packed())
                        .map_err(|e| CudaError::driver("uploading the resize tables", e))?,
                )
            };
            self.tables = Some((tables, device));
        }
        let intermediate_len = self
            .tables
            .as_ref()
            .map_or(0, |(t, _)| t.intermediate_len());
        let rgb = self.rgb.ensure(&self.stream, rgb_len(frame.format, w, h))?;
        let intermediate = self.intermediate.ensure(&self.stream, intermediate_len)?;
        let resized = match resized {
            Some(address) => address,
            None => self
                .resized
                .ensure(&self.stream, 3 * self.size * self.size)?,
        };
        let (tables, device_tables) = self.tables.as_ref().expect("set above");
        let work = WorkBuffers {
            tables: device_tables
                .as_ref()
                .map_or(0, |t| t.device_ptr(&self.stream).0),
            rgb,
            intermediate,
            resized,
        };
        for launch in launches(frame, tables, &work, planar).iter() {
            self.launch(launch)?;
        }
        Ok(())
    }

    fn launch(&self, launch: &Launch) -> Result<(), CudaError> {
        let dims = launch.dims().ok_or_else(|| {
            CudaError::Unsupported(format!(
                "{} over {} pixels needs more blocks than a grid holds",
                launch.kernel().name(),
                launch.threads()
            ))
        })?;
        let config = LaunchConfig {
            grid_dim: dims.grid,
            block_dim: dims.block,
            shared_mem_bytes: 0,
        };
        let function = self.kernels.function(launch.kernel());
        let mut builder = self.stream.launch_builder(function);
        match launch {
            Launch::Yuv(a) => builder.arg(a),
            Launch::Horizontal(a) => builder.arg(a),
            Launch::Vertical(a) => builder.arg(a),
            Launch::Planar(a) => builder.arg(a),
        };
        // SAFETY: the argument struct matches the kernel's parameter (one
        // struct by value, same layout); every address in it points into a
        // buffer sized by `plan` for this frame.
        unsafe { builder.launch(config) }
            .map_err(|e| CudaError::driver("launching a preprocessing kernel", e))?;
        Ok(())
    }

    /// Waits until everything queued has run.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(|e| CudaError::driver("running the preprocessing kernels", e))
    }

    /// The resized packed RGB image (`size * size * 3` bytes) of the last
    /// processed frame, copied to `out` after waiting for the stream.
    pub fn download_resized(&self, out: &mut Vec<u8>) -> Result<(), CudaError> {
        let len = 3 * self.size * self.size;
        let src = self
            .resized
            .slice()
            .ok_or_else(|| CudaError::Unsupported("no frame was processed yet".into()))?;
        out.resize(len, 0);
        self.stream
            .memcpy_dtoh(&src.slice(..len), &mut out[..])
            .map_err(|e| CudaError::driver("downloading the resized image", e))?;
        self.synchronize()
    }

    /// The planar model input of the last [`process`](Self::process)ed frame,
    /// copied to `out` after waiting for the stream.
    pub fn download_output(&self, out: &mut Vec<f32>) -> Result<(), CudaError> {
        let len = 3 * self.size * self.size;
        let src = self
            .output
            .slice()
            .ok_or_else(|| CudaError::Unsupported("no frame was processed yet".into()))?;
        out.resize(len, 0.0);
        self.stream
            .memcpy_dtoh(&src.slice(..len), &mut out[..])
            .map_err(|e| CudaError::driver("downloading the model input", e))?;
        self.synchronize()
    }

    /// A device buffer of `len` f32 on this preprocessor's stream (for a batch
    /// of model inputs).
    pub fn alloc_f32(&self, len: usize) -> Result<CudaSlice<f32>, CudaError> {
        // SAFETY: the caller's kernels write before anything reads.
        unsafe { self.stream.alloc::<f32>(len) }
            .map_err(|e| CudaError::allocation("device memory for the model input", e))
    }

    /// A device buffer of `len` bytes on this preprocessor's stream (for
    /// the resized images of a batch).
    pub fn alloc_u8(&self, len: usize) -> Result<CudaSlice<u8>, CudaError> {
        // SAFETY: the caller's kernels write before anything reads.
        unsafe { self.stream.alloc::<u8>(len) }
            .map_err(|e| CudaError::allocation("device memory for the resized images", e))
    }
}

impl Drop for GpuPreprocessor {
    fn drop(&mut self) {
        // Nothing may still read the staging buffer or the device buffers
        // when they are freed.
        let _ = self.stream.synchronize();
    }
}
