;; out[t] = Σ_j values[j] · rows_j[t] for every t < stride: the dense rows of a prompt's features,
;; weighted and summed, two double-precision lanes at a time (f64x2). Row entries are single
;; precision, promoted, so the sums are those of a scalar double loop over j in the same order.
;; starts[j] is the byte offset of row j; rows are `stride` floats long, stride a multiple of 4
;; (padded with zeros). Pointers are byte offsets into the exported memory; out holds doubles.
(module
  (memory (export "memory") 1)
  (func (export "sums") (param $starts i32) (param $values i32) (param $count i32) (param $stride i32) (param $out i32)
    (local $t i32) (local $tEnd i32) (local $j i32) (local $jEnd i32) (local $at i32)
    (local $v v128) (local $x v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $tEnd (i32.shl (local.get $stride) (i32.const 2)))
    (local.set $jEnd (i32.shl (local.get $count) (i32.const 2)))
    ;; Eight entries (32 bytes of a row) at a time, in four accumulators.
    (block $blocksDone
      (loop $blocks
        (br_if $blocksDone (i32.gt_u (i32.add (local.get $t) (i32.const 32)) (local.get $tEnd)))
        (local.set $a0 (v128.const f64x2 0 0))
        (local.set $a1 (v128.const f64x2 0 0))
        (local.set $a2 (v128.const f64x2 0 0))
        (local.set $a3 (v128.const f64x2 0 0))
        (local.set $j (i32.const 0))
        (block $featuresDone
          (loop $features
            (br_if $featuresDone (i32.ge_u (local.get $j) (local.get $jEnd)))
            (local.set $at (i32.add (i32.load (i32.add (local.get $starts) (local.get $j))) (local.get $t)))
            (local.set $v (f64x2.splat (f64.load (i32.add (local.get $values) (i32.shl (local.get $j) (i32.const 1))))))
            (local.set $x (v128.load (local.get $at)))
            (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (local.get $v) (f64x2.promote_low_f32x4 (local.get $x)))))
            (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (local.get $v)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))))
            (local.set $x (v128.load offset=16 (local.get $at)))
            (local.set $a2 (f64x2.add (local.get $a2) (f64x2.mul (local.get $v) (f64x2.promote_low_f32x4 (local.get $x)))))
            (local.set $a3 (f64x2.add (local.get $a3) (f64x2.mul (local.get $v)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $features)))
        (local.set $at (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 1))))
        (v128.store (local.get $at) (local.get $a0))
        (v128.store offset=16 (local.get $at) (local.get $a1))
        (v128.store offset=32 (local.get $at) (local.get $a2))
        (v128.store offset=48 (local.get $at) (local.get $a3))
        (local.set $t (i32.add (local.get $t) (i32.const 32)))
        (br $blocks)))
    ;; The last four entries, when stride is not a multiple of 8.
    (if (i32.lt_u (local.get $t) (local.get $tEnd))
      (then
        (local.set $a0 (v128.const f64x2 0 0))
        (local.set $a1 (v128.const f64x2 0 0))
        (local.set $j (i32.const 0))
        (block $restDone
          (loop $rest
            (br_if $restDone (i32.ge_u (local.get $j) (local.get $jEnd)))
            (local.set $at (i32.add (i32.load (i32.add (local.get $starts) (local.get $j))) (local.get $t)))
            (local.set $v (f64x2.splat (f64.load (i32.add (local.get $values) (i32.shl (local.get $j) (i32.const 1))))))
            (local.set $x (v128.load (local.get $at)))
            (local.set $a0 (f64x2.add (local.get $a0) (f64x2.mul (local.get $v) (f64x2.promote_low_f32x4 (local.get $x)))))
            (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (local.get $v)
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $rest)))
        (local.set $at (i32.add (local.get $out) (i32.shl (local.get $t) (i32.const 1))))
        (v128.store (local.get $at) (local.get $a0))
        (v128.store offset=16 (local.get $at) (local.get $a1))))))
