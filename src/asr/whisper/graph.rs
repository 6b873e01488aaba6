//! Four rewrites of sherpa-onnx's Whisper decoder graph, made in memory
//! when the model loads. The file on disk is untouched (it is still checked
//! against SHA256SUMS). Apart from the 8-bit output projection (2.) and
//! lookup (4.) the arithmetic is the same; only the layout of the work
//! changes:
//!
//! 1. The self-attention cache inputs declare a fixed 448 positions, yet the
//!    graph only reads `offset + n_tokens` of them. With the length made
//!    free, a call copies the few positions in use instead of 448 per
//!    hypothesis (those copies were ~45 % of a call).
//! 2. The output projection is exported as `E · xᵀ` per hypothesis, which
//!    ONNX Runtime runs as one matrix-vector product per row, reading the
//!    80 MB embedding matrix again for every hypothesis. Written as
//!    `x · Eᵀ` with `Eᵀ` a constant, all rows and tokens of a call share one
//!    matrix product. The exporter left this product in floats (it
//!    quantised every other one); the rewrite stores `Eᵀ` in 8 bits too, as
//!    the other products are (20 MB instead of 80, read by every call):
//!    decoder calls take about a quarter less time. Likely tokens'
//!    log-probabilities move by up to ~0.3 nats; accuracy over every test
//!    clip measured the same.
//!
//! 3. Cross-attention reshapes the audio's keys and values to the batch of
//!    the *text* rows, so every hypothesis needed its own copy of the
//!    encoder output (48 rows × 105 positions × 4 layers × 2 = 31 MB per
//!    call for a 2 s utterance, more than the cache holds). With the
//!    reshape's batch taken from the audio tensor itself (`-1`), one copy
//!    is fed and MatMul broadcasts it over the rows.
//!
//! 4. The token lookup reads the same 8-bit `Eᵀ` (a column per token, times
//!    its scale), so the float embedding leaves the graph: tiny.en's
//!    decoder then holds its 51864 × 384 embedding once, in 20 MB instead
//!    of 80 + 20. A decoder whose projection is already 8-bit (Whisper base
//!    as shipped) gets rewrites 1 and 3 only.
//!
//! Together a 16-hypothesis decoder call drops from ~170 ms to ~22 ms on one
//! core, which is what makes scoring every phrase of a menu affordable.
//!
//! The rewrite reads and writes the protobuf wire format directly
//! (`protobuf.rs`): it needs a handful of fields, and everything else is
//! copied through byte for byte.
//! When the graph does not have the expected shape (another exporter), the
//! caller falls back to the original graph.
//!
//! The file is longer than the house limit because it is one algorithm:
//! the four rewrites are made in one pass over the graph's fields, which
//! decides for each node, input and initializer which rewrite replaces it
//! (if any), and they depend on each other (the lookup reads the
//! projection's 8-bit matrix, so rewrite 4 happens only with 2). The
//! protobuf helpers at the end serve only this pass: a handful of field
//! numbers, read and written, with no other user.

use super::protobuf::{fields, ints, map_len_field, put_len, put_tag, put_varint, single, Field, WireError};
use super::protobuf::{WIRE_LEN, WIRE_VARINT};

/// Names of the transposed embedding matrix the rewrite adds, in 8 bits,
/// and of its scale per vocabulary entry.
const LOGITS_WEIGHT_Q8: &str = "hotline.logits_weight_q8";
const LOGITS_SCALE: &str = "hotline.logits_scale";
/// The two cache inputs whose length becomes free.
const CACHE_INPUTS: [&str; 2] = ["in_n_layer_self_k_cache", "in_n_layer_self_v_cache"];
/// Index of the position axis in `[n_layer, batch, positions, n_state]`.
const CACHE_POSITION_AXIS: usize = 2;
/// The encoder output inputs, `[n_layer, batch, frames, n_state]`.
const CROSS_INPUTS: [&str; 2] = ["n_layer_cross_k", "n_layer_cross_v"];
/// Index of their batch axis, which the rewrite frees from the text batch.
const CROSS_BATCH_AXIS: usize = 1;
/// An int64 `[-1]` the rewrite adds: "as many rows as the data has".
const BATCH_FROM_DATA: &str = "hotline.batch_from_data";

/// Why the decoder graph cannot be rewritten: it is not the graph
/// sherpa-onnx's exporter writes (the model then loads unrewritten).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("not a readable ONNX model: {0}")]
    Wire(#[from] WireError),
    /// A part of the graph the rewrite needs is not where it expects it.
    #[error("{0}")]
    Unexpected(&'static str),
    #[error("expected inputs {CACHE_INPUTS:?} and {CROSS_INPUTS:?}, found {found} of them")]
    Inputs { found: usize },
    #[error("expected one Reshape of {tensor}, found {found}")]
    AudioReshapes { tensor: String, found: usize },
    #[error("the audio's reshape target {0} is not a 4-part Concat used once")]
    AudioReshapeTarget(String),
    #[error("expected one output projection MatMul(embedding, ·), found {0}")]
    Projections(usize),
    #[error("the embedding matrix is not {vocab}×{state} floats")]
    EmbeddingShape { vocab: usize, state: usize },
    #[error("cache position axis is {declared:?}, expected {expected}")]
    CacheLength { declared: Option<u64>, expected: usize },
}

/// Model shape the rewrite checks the graph against.
pub struct DecoderShape {
    pub n_vocab: usize,
    pub n_state: usize,
    pub n_text_ctx: usize,
}

/// Returns the rewritten model, or why the graph does not fit.
pub fn rewrite_decoder(model: &[u8], shape: &DecoderShape) -> Result<Vec<u8>, GraphError> {
    let model_fields = fields(model)?;
    let graph = single(&model_fields, MODEL_GRAPH)?;
    let new_graph = rewrite_graph(graph.body, shape)?;
    let mut out = Vec::with_capacity(model.len() + shape.n_vocab * shape.n_state * 4 + 1024);
    for f in &model_fields {
        if f.num == MODEL_GRAPH {
            put_len(&mut out, MODEL_GRAPH, &new_graph);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    Ok(out)
}

// Field numbers from onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
const ATTR_NAME: u32 = 1;
const ATTR_I: u32 = 3;
const ATTR_INTS: u32 = 8;
const ATTR_TYPE: u32 = 20;
const ATTR_TYPE_INT: u64 = 2;
const TENSOR_DIMS: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_FLOAT_DATA: u32 = 4;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const TENSOR_DATA_LOCATION: u32 = 14;
const VALUE_INFO_NAME: u32 = 1;
const VALUE_INFO_TYPE: u32 = 2;
const TYPE_TENSOR: u32 = 1;
const TENSOR_TYPE_SHAPE: u32 = 2;
const SHAPE_DIM: u32 = 1;
const DIM_VALUE: u32 = 1;
const DIM_PARAM: u32 = 2;
const ONNX_FLOAT: u64 = 1;
const ONNX_INT8: u64 = 3;

fn rewrite_graph(graph: &[u8], shape: &DecoderShape) -> Result<Vec<u8>, GraphError> {
    let graph_fields = fields(graph)?;
    let mut nodes = Vec::new();
    for f in graph_fields.iter().filter(|f| f.num == GRAPH_NODE) {
        nodes.push(Node::parse(f.body)?);
    }
    let mut inits = Vec::new();
    for f in graph_fields.iter().filter(|f| f.num == GRAPH_INITIALIZER) {
        inits.push(Initializer::parse(f.body)?);
    }
    // A decoder exported with its projection already in 8 bits keeps it;
    // otherwise rewrite 2 needs the float one.
    let projection =
        if has_int8_projection(&nodes, &inits, shape) { None } else { Some(find_projection(&nodes, &inits, shape)?) };
    let (new_nodes, weights) = match &projection {
        Some(projection) => {
            let embedding = inits
                .iter()
                .find(|i| i.name == nodes[projection.matmul].inputs[0])
                .ok_or(GraphError::Unexpected("the projection's embedding matrix is not an initializer"))?;
            let x = nodes[projection.transpose_in]
                .inputs
                .first()
                .ok_or(GraphError::Unexpected("the transpose before the projection has no input"))?;
            let y = nodes[projection.transpose_out]
                .outputs
                .first()
                .ok_or(GraphError::Unexpected("the transpose after the projection has no output"))?;
            (quantized_projection(x, y), quantized_weight(embedding, shape)?)
        }
        None => (Vec::new(), Vec::new()),
    };
    let replaced = |i: usize| projection.as_ref().is_some_and(|p| [p.transpose_in, p.transpose_out].contains(&i));
    // 4. With the 8-bit `Eᵀ` in the graph, the token lookups read it too,
    // and the float embedding (80 MB for tiny.en) is dropped.
    let embedding_name = projection.as_ref().map(|p| nodes[p.matmul].inputs[0].clone());
    let lookups =
        embedding_name.as_deref().map_or_else(Vec::new, |e| shareable_lookups(&nodes, e, projection.as_ref()));
    let drop_embedding = |name: &str| !lookups.is_empty() && embedding_name.as_deref() == Some(name);

    let cross_shapes = find_cross_shapes(&nodes)?;

    let mut out = Vec::with_capacity(graph.len() + weights.iter().map(Vec::len).sum::<usize>() + 1024);
    let mut node_index = 0;
    let mut caches_seen = 0;
    let mut cross_seen = 0;
    for f in &graph_fields {
        match f.num {
            GRAPH_NODE => {
                let i = node_index;
                node_index += 1;
                if projection.as_ref().is_some_and(|p| p.matmul == i) {
                    for n in &new_nodes {
                        put_len(&mut out, GRAPH_NODE, n);
                    }
                } else if cross_shapes.contains(&i) {
                    let batch_first = map_len_field::<GraphError>(f.body, NODE_INPUT, 0, |_| {
                        Ok(BATCH_FROM_DATA.as_bytes().to_vec())
                    })?;
                    put_len(&mut out, GRAPH_NODE, &batch_first);
                } else if lookups.contains(&i) {
                    for n in quantized_lookup(&nodes[i].inputs[1], &nodes[i].outputs[0], i) {
                        put_len(&mut out, GRAPH_NODE, &n);
                    }
                } else if !replaced(i) {
                    out.extend_from_slice(f.raw);
                }
            }
            GRAPH_INPUT if CACHE_INPUTS.contains(&value_info_name(f.body)?.as_str()) => {
                caches_seen += 1;
                put_len(&mut out, GRAPH_INPUT, &free_cache_length(f.body, shape.n_text_ctx)?);
            }
            GRAPH_INPUT if CROSS_INPUTS.contains(&value_info_name(f.body)?.as_str()) => {
                cross_seen += 1;
                // Its own name: the exported graph names it after the text batch.
                put_len(&mut out, GRAPH_INPUT, &rename_dim(f.body, CROSS_BATCH_AXIS, b"n_audio_rows", |_| Ok(()))?);
            }
            GRAPH_INITIALIZER if drop_embedding(&Initializer::parse(f.body)?.name) => {}
            GRAPH_INPUT if drop_embedding(&value_info_name(f.body)?) => {}
            _ => out.extend_from_slice(f.raw),
        }
    }
    if caches_seen != CACHE_INPUTS.len() || cross_seen != CROSS_INPUTS.len() {
        return Err(GraphError::Inputs { found: caches_seen + cross_seen });
    }
    for w in &weights {
        put_len(&mut out, GRAPH_INITIALIZER, w);
    }
    put_len(&mut out, GRAPH_INITIALIZER, &int64_initializer(BATCH_FROM_DATA, -1));
    Ok(out)
}

/// Node indices of the `Concat`s that build the shape the audio keys and
/// values are reshaped to, `[text batch, frames, heads, head size]`: in
/// each layer `Gather(cross input, layer) → Reshape(·, Concat(…))`. Each
/// Concat must feed only that Reshape, as its first element is replaced.
fn find_cross_shapes(nodes: &[Node]) -> Result<Vec<usize>, GraphError> {
    let (producer, consumers) = (|t: &str| producer(nodes, t), |t: &str| consumers(nodes, t));
    let mut concats = Vec::new();
    for gather in nodes
        .iter()
        .filter(|n| n.op == "Gather" && n.inputs.first().is_some_and(|i| CROSS_INPUTS.contains(&i.as_str())))
    {
        let out = gather.outputs.first().ok_or(GraphError::Unexpected("a Gather of the audio has no output"))?;
        let reshapes: Vec<usize> = consumers(out)
            .into_iter()
            .filter(|&k| nodes[k].op == "Reshape" && nodes[k].inputs.first() == Some(out))
            .collect();
        let [reshape] = reshapes[..] else {
            return Err(GraphError::AudioReshapes { tensor: out.clone(), found: reshapes.len() });
        };
        let target =
            nodes[reshape].inputs.get(1).ok_or(GraphError::Unexpected("a Reshape of the audio has no shape input"))?;
        let concat = producer(target).ok_or(GraphError::Unexpected("the audio's reshape target has no producer"))?;
        if nodes[concat].op != "Concat" || nodes[concat].inputs.len() != 4 || consumers(target) != [reshape] {
            return Err(GraphError::AudioReshapeTarget(target.clone()));
        }
        concats.push(concat);
    }
    if concats.is_empty() {
        return Err(GraphError::Unexpected("no reshape of the audio keys and values found"));
    }
    Ok(concats)
}

/// A one-element int64 initializer.
fn int64_initializer(name: &str, value: i64) -> Vec<u8> {
    const ONNX_INT64: u64 = 7;
    tensor(name, &[1], ONNX_INT64, &value.to_le_bytes())
}

/// The token lookups `Gather(E, tokens)` (axis 0) that can read the 8-bit
/// `Eᵀ` instead, when they and the projection are all that read `E`;
/// empty otherwise (the float matrix then stays).
fn shareable_lookups(nodes: &[Node], embedding: &str, projection: Option<&Projection>) -> Vec<usize> {
    let Some(projection) = projection else { return Vec::new() };
    let users = consumers(nodes, embedding);
    let lookups: Vec<usize> = users
        .iter()
        .copied()
        .filter(|&k| {
            let n = &nodes[k];
            n.op == "Gather"
                && n.inputs.len() == 2
                && n.inputs[0] == embedding
                && n.axis.unwrap_or(0) == 0
                && n.outputs.len() == 1
        })
        .collect();
    if lookups.is_empty() || lookups.len() + 1 != users.len() || !users.contains(&projection.matmul) {
        return Vec::new();
    }
    lookups
}

/// `Gather(E, tokens)` from the 8-bit `Eᵀ [n_state, n_vocab]`: the columns
/// of the tokens, moved to `[.., n_state]`, times each token's scale.
fn quantized_lookup(tokens: &str, y: &str, index: usize) -> Vec<Vec<u8>> {
    let name = |what: &str| format!("hotline.lookup{index}_{what}");
    let (columns, rows, floats, scale, scale_col) =
        (name("q8"), name("rows"), name("floats"), name("scale"), name("scale_col"));
    let mut gather = node("Gather", &[LOGITS_WEIGHT_Q8, tokens], &[&columns], None);
    put_len(&mut gather, NODE_ATTRIBUTE, &int_attribute("axis", 1));
    let mut transpose = node("Transpose", &[&columns], &[&rows], None);
    // [n_state, batch, n] → [batch, n, n_state]
    put_len(&mut transpose, NODE_ATTRIBUTE, &ints_attribute("perm", &[1, 2, 0]));
    vec![
        gather,
        transpose,
        node("Cast", &[&rows], &[&floats], Some(ONNX_FLOAT)),
        node("Gather", &[LOGITS_SCALE, tokens], &[&scale], None),
        node("Unsqueeze", &[&scale, BATCH_FROM_DATA], &[&scale_col], None),
        node("Mul", &[&floats, &scale_col], &[y], None),
    ]
}

fn int_attribute(name: &str, value: i64) -> Vec<u8> {
    let mut a = Vec::new();
    put_len(&mut a, ATTR_NAME, name.as_bytes());
    put_tag(&mut a, ATTR_I, WIRE_VARINT);
    put_varint(&mut a, value as u64);
    put_tag(&mut a, ATTR_TYPE, WIRE_VARINT);
    put_varint(&mut a, ATTR_TYPE_INT);
    a
}

fn ints_attribute(name: &str, values: &[i64]) -> Vec<u8> {
    const ATTR_TYPE_INTS: u64 = 7;
    let mut a = Vec::new();
    put_len(&mut a, ATTR_NAME, name.as_bytes());
    for &v in values {
        put_tag(&mut a, ATTR_INTS, WIRE_VARINT);
        put_varint(&mut a, v as u64);
    }
    put_tag(&mut a, ATTR_TYPE, WIRE_VARINT);
    put_varint(&mut a, ATTR_TYPE_INTS);
    a
}

/// True when the output projection is already an 8-bit `x · Eᵀ`: a
/// MatMulInteger with a constant int8 `[n_state, n_vocab]` matrix (as in
/// decoders that store the token embedding once, in 8 bits).
fn has_int8_projection(nodes: &[Node], inits: &[Initializer], shape: &DecoderShape) -> bool {
    let is_int8_embedding = |name: &str| {
        inits.iter().any(|i| {
            i.name == name && i.data_type == ONNX_INT8 && i.dims == [shape.n_state as i64, shape.n_vocab as i64]
        })
    };
    nodes.iter().any(|n| n.op == "MatMulInteger" && n.inputs.get(1).is_some_and(|b| is_int8_embedding(b)))
}

/// Node indices of `Transpose → MatMul(E, ·) → Transpose`.
struct Projection {
    transpose_in: usize,
    matmul: usize,
    transpose_out: usize,
}

fn find_projection(nodes: &[Node], inits: &[Initializer], shape: &DecoderShape) -> Result<Projection, GraphError> {
    let is_embedding =
        |name: &str| inits.iter().any(|i| i.name == name && i.dims == [shape.n_vocab as i64, shape.n_state as i64]);
    let (producer, consumers) = (|t: &str| producer(nodes, t), |t: &str| consumers(nodes, t));
    let swaps_last_two = |k: usize| nodes[k].op == "Transpose" && nodes[k].perm.as_deref() == Some(&[0, 2, 1]);
    let matches: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op == "MatMul" && n.inputs.len() == 2 && is_embedding(&n.inputs[0]))
        .map(|(k, _)| k)
        .collect();
    let [matmul] = matches[..] else {
        return Err(GraphError::Projections(matches.len()));
    };
    let transpose_in =
        producer(&nodes[matmul].inputs[1]).ok_or(GraphError::Unexpected("the projection's input has no producer"))?;
    let out_users = consumers(&nodes[matmul].outputs[0]);
    let in_users = consumers(&nodes[matmul].inputs[1]);
    match (&out_users[..], &in_users[..]) {
        (&[transpose_out], &[only])
            if only == matmul && swaps_last_two(transpose_in) && swaps_last_two(transpose_out) =>
        {
            Ok(Projection { transpose_in, matmul, transpose_out })
        }
        _ => Err(GraphError::Unexpected("the output projection is not Transpose → MatMul → Transpose")),
    }
}

/// One graph node; `cast_to` is the `to` attribute of a Cast.
fn node(op: &str, inputs: &[&str], outputs: &[&str], cast_to: Option<u64>) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        put_len(&mut n, NODE_INPUT, i.as_bytes());
    }
    for o in outputs {
        put_len(&mut n, NODE_OUTPUT, o.as_bytes());
    }
    put_len(&mut n, NODE_NAME, format!("hotline/{}", outputs.first().copied().unwrap_or(op)).as_bytes());
    put_len(&mut n, NODE_OP_TYPE, op.as_bytes());
    if let Some(to) = cast_to {
        let mut a = Vec::new();
        put_len(&mut a, ATTR_NAME, b"to");
        put_tag(&mut a, ATTR_I, WIRE_VARINT);
        put_varint(&mut a, to);
        put_tag(&mut a, ATTR_TYPE, WIRE_VARINT);
        put_varint(&mut a, ATTR_TYPE_INT);
        put_len(&mut n, NODE_ATTRIBUTE, &a);
    }
    n
}

/// `y = x · Eᵀ` in 8 bits, the way the rest of the int8 decoder computes
/// its products: `x` quantised per call (DynamicQuantizeLinear), `Eᵀ`
/// stored as int8 with one scale per vocabulary entry, the int32 product
/// scaled back to floats (a chain ONNX Runtime's optimiser knows how to
/// fuse).
fn quantized_projection(x: &str, y: &str) -> Vec<Vec<u8>> {
    const XQ: &str = "hotline.logits_x_q";
    const XS: &str = "hotline.logits_x_scale";
    const XZ: &str = "hotline.logits_x_zero";
    const PRODUCT: &str = "hotline.logits_int32";
    const PRODUCT_F: &str = "hotline.logits_unscaled";
    const SCALE: &str = "hotline.logits_scale_product";
    vec![
        node("DynamicQuantizeLinear", &[x], &[XQ, XS, XZ], None),
        node("MatMulInteger", &[XQ, LOGITS_WEIGHT_Q8, XZ], &[PRODUCT], None),
        node("Cast", &[PRODUCT], &[PRODUCT_F], Some(ONNX_FLOAT)),
        node("Mul", &[XS, LOGITS_SCALE], &[SCALE], None),
        node("Mul", &[PRODUCT_F, SCALE], &[y], None),
    ]
}

/// `Eᵀ` as int8 `[n_state, n_vocab]` with a float scale per vocabulary
/// entry (the largest magnitude of its embedding maps to 127).
fn quantized_weight(embedding: &Initializer, shape: &DecoderShape) -> Result<Vec<Vec<u8>>, GraphError> {
    let (v, d) = (shape.n_vocab, shape.n_state);
    let data = embedding.floats.ok_or(GraphError::Unexpected("the embedding matrix has no inline float data"))?;
    if embedding.data_type != ONNX_FLOAT || data.len() != v * d * 4 {
        return Err(GraphError::EmbeddingShape { vocab: v, state: d });
    }
    let at = |k: usize| f32::from_le_bytes([data[4 * k], data[4 * k + 1], data[4 * k + 2], data[4 * k + 3]]);
    let mut q = vec![0u8; v * d];
    let mut scales = Vec::with_capacity(v * 4);
    for row in 0..v {
        let peak = (0..d).map(|col| at(row * d + col).abs()).fold(0.0f32, f32::max);
        let scale = if peak > 0.0 { peak / 127.0 } else { 1.0 };
        for col in 0..d {
            q[col * v + row] = ((at(row * d + col) / scale).round().clamp(-127.0, 127.0) as i8) as u8;
        }
        scales.extend_from_slice(&scale.to_le_bytes());
    }
    Ok(vec![tensor(LOGITS_WEIGHT_Q8, &[d, v], ONNX_INT8, &q), tensor(LOGITS_SCALE, &[v], ONNX_FLOAT, &scales)])
}

/// A tensor initializer from raw little-endian data.
fn tensor(name: &str, dims: &[usize], data_type: u64, raw: &[u8]) -> Vec<u8> {
    let mut packed = Vec::new();
    for &d in dims {
        put_varint(&mut packed, d as u64);
    }
    let mut out = Vec::with_capacity(raw.len() + 64);
    put_len(&mut out, TENSOR_DIMS, &packed);
    put_tag(&mut out, TENSOR_DATA_TYPE, WIRE_VARINT);
    put_varint(&mut out, data_type);
    put_len(&mut out, TENSOR_NAME, name.as_bytes());
    put_len(&mut out, TENSOR_RAW_DATA, raw);
    out
}

fn value_info_name(value_info: &[u8]) -> Result<String, WireError> {
    let f = fields(value_info)?;
    Ok(f.iter()
        .find(|f| f.num == VALUE_INFO_NAME)
        .map(|f| String::from_utf8_lossy(f.body).into_owned())
        .unwrap_or_default())
}

/// The cache input's declaration with its position axis made symbolic.
fn free_cache_length(value_info: &[u8], n_text_ctx: usize) -> Result<Vec<u8>, GraphError> {
    rename_dim(value_info, CACHE_POSITION_AXIS, b"n_cache", |dim| {
        let declared = fields(dim)?.iter().find(|f| f.num == DIM_VALUE).map(|f| f.varint);
        if declared != Some(n_text_ctx as u64) {
            return Err(GraphError::CacheLength { declared, expected: n_text_ctx });
        }
        Ok(())
    })
}

/// An input's declaration with axis `axis` made symbolic under `name`, once
/// `check` accepts the axis as declared.
fn rename_dim(
    value_info: &[u8],
    axis: usize,
    name: &[u8],
    check: impl FnOnce(&[u8]) -> Result<(), GraphError>,
) -> Result<Vec<u8>, GraphError> {
    map_len_field(value_info, VALUE_INFO_TYPE, 0, |ty| {
        map_len_field(ty, TYPE_TENSOR, 0, |tensor| {
            map_len_field(tensor, TENSOR_TYPE_SHAPE, 0, |shape| {
                map_len_field(shape, SHAPE_DIM, axis, |dim| {
                    check(dim)?;
                    let mut d = Vec::new();
                    put_len(&mut d, DIM_PARAM, name);
                    Ok(d)
                })
            })
        })
    })
}

/// Index of the node that writes `tensor`.
fn producer(nodes: &[Node], tensor: &str) -> Option<usize> {
    nodes.iter().position(|n| n.outputs.iter().any(|o| o == tensor))
}

/// Indices of the nodes that read `tensor`.
fn consumers(nodes: &[Node], tensor: &str) -> Vec<usize> {
    nodes.iter().enumerate().filter(|(_, n)| n.inputs.iter().any(|i| i == tensor)).map(|(k, _)| k).collect()
}

struct Node {
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// The `perm` attribute of a Transpose.
    perm: Option<Vec<i64>>,
    /// The `axis` attribute (of a Gather).
    axis: Option<i64>,
}

impl Node {
    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let text = |f: &Field| String::from_utf8_lossy(f.body).into_owned();
        let mut node = Node { op: String::new(), inputs: vec![], outputs: vec![], perm: None, axis: None };
        for f in fields(body)? {
            match f.num {
                NODE_INPUT => node.inputs.push(text(&f)),
                NODE_OUTPUT => node.outputs.push(text(&f)),
                NODE_OP_TYPE => node.op = text(&f),
                NODE_ATTRIBUTE => {
                    let attr = fields(f.body)?;
                    if attr.iter().any(|a| a.num == ATTR_NAME && a.body == b"perm") {
                        node.perm = Some(ints(&attr, ATTR_INTS)?);
                    }
                    if attr.iter().any(|a| a.num == ATTR_NAME && a.body == b"axis") {
                        node.axis = attr.iter().find(|a| a.num == ATTR_I).map(|a| a.varint as i64);
                    }
                }
                _ => {}
            }
        }
        Ok(node)
    }
}

struct Initializer<'a> {
    name: String,
    dims: Vec<i64>,
    data_type: u64,
    /// Little-endian floats, from `raw_data` or packed `float_data`.
    floats: Option<&'a [u8]>,
}

impl<'a> Initializer<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let f = fields(body)?;
        let external = f.iter().any(|x| x.num == TENSOR_DATA_LOCATION && x.varint == 1);
        let floats = f
            .iter()
            .find(|x| x.num == TENSOR_RAW_DATA && x.wire == WIRE_LEN)
            .or_else(|| f.iter().find(|x| x.num == TENSOR_FLOAT_DATA && x.wire == WIRE_LEN))
            .map(|x| x.body);
        Ok(Initializer {
            name: f
                .iter()
                .find(|x| x.num == TENSOR_NAME)
                .map(|x| String::from_utf8_lossy(x.body).into_owned())
                .unwrap_or_default(),
            dims: ints(&f, TENSOR_DIMS)?,
            data_type: f.iter().find(|x| x.num == TENSOR_DATA_TYPE).map_or(0, |x| x.varint),
            floats: if external { None } else { floats },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_field_is_replaced_and_the_rest_kept() {
        // Dimension list: 4, 448 as dim_value, "x" as dim_param.
        let dim = |v: u64| {
            let mut d = Vec::new();
            put_tag(&mut d, DIM_VALUE, WIRE_VARINT);
            put_varint(&mut d, v);
            d
        };
        let mut shape = Vec::new();
        for v in [4, 2, 448, 384] {
            put_len(&mut shape, SHAPE_DIM, &dim(v));
        }
        let mut tensor = Vec::new();
        put_tag(&mut tensor, 1, WIRE_VARINT);
        put_varint(&mut tensor, ONNX_FLOAT);
        put_len(&mut tensor, TENSOR_TYPE_SHAPE, &shape);
        let mut ty = Vec::new();
        put_len(&mut ty, TYPE_TENSOR, &tensor);
        let mut vi = Vec::new();
        put_len(&mut vi, VALUE_INFO_NAME, b"in_n_layer_self_k_cache");
        put_len(&mut vi, VALUE_INFO_TYPE, &ty);

        let out = free_cache_length(&vi, 448).unwrap();
        assert_eq!(value_info_name(&out).unwrap(), "in_n_layer_self_k_cache");
        let ty = fields(&out).unwrap().into_iter().find(|f| f.num == VALUE_INFO_TYPE).unwrap().body.to_vec();
        let tensor = fields(&ty).unwrap()[0].body.to_vec();
        let shape = fields(&tensor).unwrap().into_iter().find(|f| f.num == TENSOR_TYPE_SHAPE).unwrap().body.to_vec();
        let dims: Vec<Vec<u8>> = fields(&shape).unwrap().iter().map(|f| f.body.to_vec()).collect();
        assert_eq!(dims.len(), 4);
        assert_eq!(dims[0], dim(4));
        assert_eq!(dims[3], dim(384));
        let third = fields(&dims[2]).unwrap();
        assert_eq!((third[0].num, third[0].body), (DIM_PARAM, &b"n_cache"[..]));
        // A graph whose cache is not the expected length is refused.
        assert!(matches!(
            free_cache_length(&vi, 1500),
            Err(GraphError::CacheLength { declared: Some(448), expected: 1500 })
        ));
    }
}
