// DreamSim preprocessing on the GPU: the CUDA C twin of src/preprocess/.
//
// Compiled at run time by NVRTC (src/cuda/kernels.rs) and, for the tests, as
// plain C++ with DREAMSIM_EMULATE defined (tests/cuda.rs runs every kernel on
// the CPU through a small grid emulator). Keep it to what both accept: no
// headers, no shared memory, no warp intrinsics; one thread per output
// element, and every thread writes only its own outputs.
//
// Exactness rules (the CPU path is the reference, byte for byte):
// - resampling sums are i32 with the same fixed-point weights (uploaded from
//   ResizePlan's AxisCoeffs), the same rounding bias 1 << 21 and the same
//   clip to 0..255 after an arithmetic shift by 22;
// - the YUV conversion is f64 with every operation rounded on its own
//   (__dmul_rn and friends are never fused into an FMA, unlike a * b + c);
// - the /255 is an IEEE-rounded f32 division (__fdiv_rn), as Rust's `/`.
//
// Every argument struct is made of 8-byte fields only, so its layout is the
// same in C, in CUDA and in the #[repr(C)] twin in src/cuda/plan.rs.

#ifndef DREAMSIM_EMULATE
typedef unsigned char u8;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;
#endif

#define DREAMSIM_PRECISION_BITS 22
#define DREAMSIM_ROUNDING_BIAS (1 << (DREAMSIM_PRECISION_BITS - 1))

// A packed 8-bit image to read R, G, B from: RGB-family frames in place
// (bpp 3 or 4, channel offsets from the format), GRAY8 (bpp 1, offsets 0, 0,
// 0) and the packed RGB intermediates (bpp 3, offsets 0, 1, 2).
struct PackedImage {
    u64 data;
    i64 stride;
    i64 bpp;
    i64 offsets[3];
};

struct YuvArgs {
    u64 y;
    u64 u;  // first U sample of the first chroma row
    u64 v;  // first V sample of the first chroma row
    i64 y_stride;
    i64 u_stride;
    i64 v_stride;
    i64 u_step;  // bytes between U samples: 1 planar, 2 semi-planar
    i64 v_step;
    i64 width;
    i64 height;
    u64 dst;  // packed RGB
    i64 dst_stride;
    double y_off;
    double y_scale;
    double c_scale;
    double r_cr;
    double b_cb;
    double kr;
    double kb;
    double g_div;
};

struct HorizontalArgs {
    PackedImage src;
    i64 first_row;  // source row that output row 0 is computed from
    i64 rows;
    u64 dst;  // packed RGB
    i64 dst_stride;
    i64 out_w;
    u64 bounds;  // i32 (first, count) per output column
    u64 coeffs;  // i32 [out_w][ksize], 22 fraction bits
    i64 ksize;
};

struct VerticalArgs {
    PackedImage src;
    i64 row_offset;  // source row index of src's row 0
    i64 width;
    i64 out_h;
    u64 dst;  // packed RGB
    i64 dst_stride;
    u64 bounds;  // i32 (first, count) per output row, in source rows
    u64 coeffs;  // i32 [out_h][ksize]
    i64 ksize;
};

struct PlanarArgs {
    PackedImage src;
    i64 width;
    i64 height;
    u64 packed;  // packed RGB copy of the input, width * 3 bytes a row; 0: none
    u64 planar;  // f32 [3][height][width] in [0, 1]; 0: none
};

__device__ __forceinline__ i64 dreamsim_thread_index() {
    return (i64)blockIdx.x * (i64)blockDim.x + (i64)threadIdx.x;
}

// Pillow's clip8: drop the fraction bits (arithmetic shift) and clamp.
__device__ __forceinline__ u8 dreamsim_clip8(i32 sum) {
    i32 v = sum >> DREAMSIM_PRECISION_BITS;
    return (u8)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// (255 v + 0.5) floored and clamped, as convert.rs's quantise.
__device__ __forceinline__ u8 dreamsim_quantise(double v) {
    double q = floor(__dadd_rn(__dmul_rn(255.0, v), 0.5));
    q = q < 0.0 ? 0.0 : (q > 255.0 ? 255.0 : q);
    return (u8)q;
}

// I420, YV12, NV12 and NV21 to packed RGB at full size, nearest chroma.
extern "C" __global__ void dreamsim_yuv420_to_rgb(const YuvArgs a) {
    i64 i = dreamsim_thread_index();
    if (i >= a.width * a.height) return;
    i64 x = i % a.width;
    i64 y = i / a.width;
    i64 c = x / 2;
    i64 cy = y / 2;
    u8 yv = ((const u8*)a.y)[y * a.y_stride + x];
    u8 uv = ((const u8*)a.u)[cy * a.u_stride + c * a.u_step];
    u8 vv = ((const u8*)a.v)[cy * a.v_stride + c * a.v_step];
    // The CPU tabulates these three per sample value; each entry is one
    // subtraction and one division, so computing them here gives the same
    // doubles.
    double yn = __ddiv_rn(__dsub_rn((double)yv, a.y_off), a.y_scale);
    double cb = __ddiv_rn(__dsub_rn((double)uv, 128.0), a.c_scale);
    double cr = __ddiv_rn(__dsub_rn((double)vv, 128.0), a.c_scale);
    double r = __dadd_rn(yn, __dmul_rn(a.r_cr, cr));
    double b = __dadd_rn(yn, __dmul_rn(a.b_cb, cb));
    double g = __ddiv_rn(__dsub_rn(__dsub_rn(yn, __dmul_rn(a.kr, r)), __dmul_rn(a.kb, b)), a.g_div);
    u8* out = (u8*)a.dst + y * a.dst_stride + x * 3;
    out[0] = dreamsim_quantise(r);
    out[1] = dreamsim_quantise(g);
    out[2] = dreamsim_quantise(b);
}

// Pillow's 8-bit horizontal pass: output pixel (xx, y) from source row
// first_row + y.
extern "C" __global__ void dreamsim_resample_horizontal(const HorizontalArgs a) {
    i64 i = dreamsim_thread_index();
    if (i >= a.out_w * a.rows) return;
    i64 xx = i % a.out_w;
    i64 y = i / a.out_w;
    const i32* bounds = (const i32*)a.bounds + 2 * xx;
    const i32* k = (const i32*)a.coeffs + xx * a.ksize;
    i32 first = bounds[0];
    i32 count = bounds[1];
    const u8* row = (const u8*)a.src.data + (a.first_row + y) * a.src.stride;
    i64 bpp = a.src.bpp;
    i64 o0 = a.src.offsets[0], o1 = a.src.offsets[1], o2 = a.src.offsets[2];
    i32 s0 = DREAMSIM_ROUNDING_BIAS, s1 = DREAMSIM_ROUNDING_BIAS, s2 = DREAMSIM_ROUNDING_BIAS;
    for (i32 t = 0; t < count; ++t) {
        const u8* p = row + (i64)(first + t) * bpp;
        i32 w = k[t];
        s0 += (i32)p[o0] * w;
        s1 += (i32)p[o1] * w;
        s2 += (i32)p[o2] * w;
    }
    u8* out = (u8*)a.dst + y * a.dst_stride + xx * 3;
    out[0] = dreamsim_clip8(s0);
    out[1] = dreamsim_clip8(s1);
    out[2] = dreamsim_clip8(s2);
}

// Pillow's 8-bit vertical pass: output pixel (x, yy) from the source rows
// bounds[yy] (shifted by row_offset into src).
extern "C" __global__ void dreamsim_resample_vertical(const VerticalArgs a) {
    i64 i = dreamsim_thread_index();
    if (i >= a.width * a.out_h) return;
    i64 x = i % a.width;
    i64 yy = i / a.width;
    const i32* bounds = (const i32*)a.bounds + 2 * yy;
    const i32* k = (const i32*)a.coeffs + yy * a.ksize;
    i64 first = (i64)bounds[0] - a.row_offset;
    i32 count = bounds[1];
    const u8* column = (const u8*)a.src.data + first * a.src.stride + x * a.src.bpp;
    i64 o0 = a.src.offsets[0], o1 = a.src.offsets[1], o2 = a.src.offsets[2];
    i32 s0 = DREAMSIM_ROUNDING_BIAS, s1 = DREAMSIM_ROUNDING_BIAS, s2 = DREAMSIM_ROUNDING_BIAS;
    for (i32 t = 0; t < count; ++t) {
        const u8* p = column + (i64)t * a.src.stride;
        i32 w = k[t];
        s0 += (i32)p[o0] * w;
        s1 += (i32)p[o1] * w;
        s2 += (i32)p[o2] * w;
    }
    u8* out = (u8*)a.dst + yy * a.dst_stride + x * 3;
    out[0] = dreamsim_clip8(s0);
    out[1] = dreamsim_clip8(s1);
    out[2] = dreamsim_clip8(s2);
}

// The model input: planar R, G, B as u8 / 255 in f32; optionally also a
// packed RGB copy (for a same-size frame, whose "resize" is a copy).
extern "C" __global__ void dreamsim_to_planar(const PlanarArgs a) {
    i64 area = a.width * a.height;
    i64 i = dreamsim_thread_index();
    if (i >= area) return;
    i64 x = i % a.width;
    i64 y = i / a.width;
    const u8* p = (const u8*)a.src.data + y * a.src.stride + x * a.src.bpp;
    u8 rgb[3] = {p[a.src.offsets[0]], p[a.src.offsets[1]], p[a.src.offsets[2]]};
    if (a.packed) {
        u8* q = (u8*)a.packed + i * 3;
        q[0] = rgb[0];
        q[1] = rgb[1];
        q[2] = rgb[2];
    }
    if (a.planar) {
        float* f = (float*)a.planar;
        f[i] = __fdiv_rn((float)rgb[0], 255.0f);
        f[area + i] = __fdiv_rn((float)rgb[1], 255.0f);
        f[2 * area + i] = __fdiv_rn((float)rgb[2], 255.0f);
    }
}
