import t from 'tap';
import pino from 'pino';
import { Writable } from 'node:stream';
import { hubProgress } from '../src/cli/hub-progress.js';
import { hubLog } from '../src/encoders/hub/progress-log.js';
import { QuarterMarks } from '../src/encoders/hub/quarter-marks.js';

const file = { path: 'onnx/model.onnx', size: 100e6, etag: 'a'.repeat(64), lfs: true };

t.test('each quarter of a download is passed once, per file', async (t) => {
  const marks = new QuarterMarks();
  marks.start('a');
  marks.start('b');
  t.same([10, 24, 25, 49, 50, 60, 99, 100].map((bytes) => marks.passed('a', bytes, 100)), [undefined, undefined, 1, undefined, 2, undefined, 3, 4]);
  t.equal(marks.passed('b', 50, 100), 2, 'another file keeps its own marks');
  t.equal(marks.passed('b', 120, 100), 4, 'past the end counts as the end');
  t.equal(marks.passed('b', 130, 100), undefined);
  marks.start('a');
  t.equal(marks.passed('a', 30, 100), 1, 'a download started again is reported again');
});

t.test('logs: a line at each quarter and every everyMs between them, none at the end', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => void (lines.push(JSON.parse(String(chunk))), done()) }));
  let clock = 0;
  const events = hubLog(logger, 5000, () => clock);
  events.downloading!(file, 0);
  const progress = (mb: number, atMs: number) => {
    clock = atMs;
    events.progress!({ file: file.path, bytes: mb * 1e6, total: file.size });
  };
  progress(10, 1000);
  progress(20, 4000);
  progress(22, 6000); // 5 s since the last line
  progress(24, 7000);
  progress(26, 8000); // the first quarter
  progress(74, 9000); // the second quarter
  progress(75, 9500); // the third
  progress(100, 9600); // done: the 'resolved' line says so
  t.same(lines.map((line) => line.percent), [undefined, 22, 26, 74, 75]);
  t.equal(lines[0].msg, 'downloading model file');
  t.equal(lines[0].mb, 100);
});

t.test('plain output (no terminal): a line a file and one at each quarter', async (t) => {
  const written: string[] = [];
  const write = process.stderr.write;
  const isTTY = process.stderr.isTTY;
  process.stderr.isTTY = false;
  process.stderr.write = ((chunk: string) => (written.push(chunk), true)) as typeof process.stderr.write;
  try {
    const events = hubProgress();
    events.downloading!(file, 20e6);
    for (const mb of [30, 40, 50, 55, 100]) events.progress!({ file: file.path, bytes: mb * 1e6, total: file.size });
    events.stop();
  } finally {
    process.stderr.write = write;
    process.stderr.isTTY = isTTY;
  }
  t.same(written, ['resuming onnx/model.onnx (100.0 MB) from 20.0 MB\n', '  onnx/model.onnx: 25% (30.0 MB)\n', '  onnx/model.onnx: 50% (50.0 MB)\n', '  onnx/model.onnx: 100% (100.0 MB)\n']);
});
