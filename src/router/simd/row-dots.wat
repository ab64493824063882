;; out[r] = rows[r] · query for every row r: four single-precision products at a time (f32x4).
;; Rows are `stride` floats apart, stride a multiple of 4 (the rows are padded with zeros), and
;; the query is padded the same way. Pointers are byte offsets into the exported memory.
(module
  (memory (export "memory") 1)
  (func (export "dots") (param $rows i32) (param $count i32) (param $stride i32) (param $query i32) (param $out i32)
    (local $row i32) (local $end i32) (local $at i32) (local $q i32) (local $rowBytes i32) (local $sum v128)
    (local.set $rowBytes (i32.shl (local.get $stride) (i32.const 2)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 3))))
    (local.set $row (local.get $rows))
    (block $rowsDone
      (loop $rowsLoop
        (br_if $rowsDone (i32.ge_u (local.get $out) (local.get $end)))
        (local.set $sum (v128.const f32x4 0 0 0 0))
        (local.set $at (local.get $row))
        (local.set $q (local.get $query))
        (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
        (block $rowDone
          (loop $rowLoop
            (br_if $rowDone (i32.ge_u (local.get $at) (local.get $row)))
            (local.set $sum (f32x4.add (local.get $sum) (f32x4.mul (v128.load (local.get $at)) (v128.load (local.get $q)))))
            (local.set $at (i32.add (local.get $at) (i32.const 16)))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (br $rowLoop)))
        (f64.store (local.get $out)
          (f64.add
            (f64.add (f64.promote_f32 (f32x4.extract_lane 0 (local.get $sum))) (f64.promote_f32 (f32x4.extract_lane 1 (local.get $sum))))
            (f64.add (f64.promote_f32 (f32x4.extract_lane 2 (local.get $sum))) (f64.promote_f32 (f32x4.extract_lane 3 (local.get $sum))))))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br $rowsLoop)))))
