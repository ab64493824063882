import type { EncoderKind, EncoderSettings } from '../config/schema.js';
import { availableParallelism } from 'node:os';
import { BuiltinEncoder, DEFAULT_BUILTIN_ENCODER_OPTIONS, type BuiltinEncoderOptions } from './builtin/builtin-encoder.js';
import { ThreadedBuiltinEncoder, type EncodingThread } from './builtin/threaded-encoder.js';
import type { Encoder } from './encoder.js';
import { EncoderSetupError } from './errors.js';
import { HybridEncoder } from './hybrid-encoder.js';
import { OnnxEncoder } from './onnx/onnx-encoder.js';
import { RemoteEncoder } from './remote/remote-encoder.js';

export type ExampleSets = readonly { examples: readonly string[] }[];

/**
 * An encoder kind made ready once (model loaded, server checked). `forTasks` gives the encoder for
 * a set of tasks: the built-in encoder is fitted on their examples, neural ones do not depend on them.
 */
export interface PreparedEncoder {
  readonly kind: EncoderKind;
  /** True when `forTasks` fits a new encoder on the tasks (so a registry change changes it). */
  readonly fitted: boolean;
  forTasks(tasks: ExampleSets): Encoder;
  /**
   * The encoder that routes prompts for these tasks, when it differs from `forTasks`'s: it may hold
   * threads, so close it once it is out of service.
   */
  forServing?(tasks: ExampleSets): Encoder;
  close(): Promise<void>;
}

/** What an encoder tells the gateway about its threads: a failure it went on without, where prompts were encoded. */
export interface EncoderObserver {
  problem?(message: string, error?: unknown): void;
  encoded?(thread: EncodingThread, count: number): void;
}

interface EncoderKindEntry {
  prepare(settings: EncoderSettings, observer?: EncoderObserver): Promise<PreparedEncoder>;
}

const builtinOptions = (settings: EncoderSettings): BuiltinEncoderOptions => ({ ...DEFAULT_BUILTIN_ENCODER_OPTIONS, maxDimensions: settings.maxDimensions });
const fitBuiltin = (settings: EncoderSettings, tasks: ExampleSets) => BuiltinEncoder.fit(tasks, builtinOptions(settings));

/** LORAUTER_ENCODER_WORKERS, or by default one thread when the process may use more than one CPU. */
export function encoderWorkers(settings: EncoderSettings): number {
  return settings.workers ?? (availableParallelism() > 1 ? 1 : 0);
}

function servingBuiltin(settings: EncoderSettings, tasks: ExampleSets, observer: EncoderObserver = {}): Encoder {
  const local = fitBuiltin(settings, tasks);
  const threads = encoderWorkers(settings);
  if (threads === 0) return local;
  return new ThreadedBuiltinEncoder(local, tasks.map((task) => task.examples), builtinOptions(settings), {
    threads,
    timeoutMs: settings.timeoutMs,
    onProblem: observer.problem?.bind(observer),
    onEncoded: observer.encoded?.bind(observer),
  });
}

const loadOnnx = (settings: EncoderSettings) => {
  if (!settings.model) throw new EncoderSetupError(`LORAUTER_ENCODER=${settings.kind} needs LORAUTER_ENCODER_MODEL, a sentence-transformers model folder exported to ONNX`);
  return OnnxEncoder.load({ ...settings, model: settings.model });
};

const connectRemote = (settings: EncoderSettings) => {
  if (!settings.url) throw new EncoderSetupError(`LORAUTER_ENCODER=${settings.kind} needs LORAUTER_ENCODER_URL, an OpenAI-compatible /v1/embeddings server`);
  return RemoteEncoder.connect({ ...settings, url: settings.url });
};

function fixed(kind: EncoderKind, encoder: Encoder): PreparedEncoder {
  return { kind, fitted: false, forTasks: () => encoder, close: async () => encoder.close?.() };
}

/** Every encoder kind, by the name LORAUTER_ENCODER takes. */
export const ENCODER_KINDS: Record<EncoderKind, EncoderKindEntry> = {
  builtin: {
    prepare: async (settings, observer) => ({
      kind: 'builtin',
      fitted: true,
      forTasks: (tasks) => fitBuiltin(settings, tasks),
      forServing: (tasks) => servingBuiltin(settings, tasks, observer),
      close: async () => {},
    }),
  },
  onnx: { prepare: async (settings) => fixed('onnx', await loadOnnx(settings)) },
  remote: { prepare: async (settings) => fixed('remote', await connectRemote(settings)) },
  hybrid: {
    prepare: async (settings) => {
      // The neural half: a local ONNX model when one is named, else the embeddings server.
      const neural = settings.model ? await loadOnnx(settings) : settings.url ? await connectRemote(settings) : undefined;
      if (!neural) throw new EncoderSetupError('LORAUTER_ENCODER=hybrid needs a neural encoder: LORAUTER_ENCODER_MODEL (ONNX) or LORAUTER_ENCODER_URL (embeddings server)');
      return {
        kind: 'hybrid',
        fitted: true,
        forTasks: (tasks) => new HybridEncoder(fitBuiltin(settings, tasks), neural, settings.hybridWeight),
        close: async () => neural.close?.(),
      };
    },
  },
};

export function prepareEncoder(settings: EncoderSettings, observer?: EncoderObserver): Promise<PreparedEncoder> {
  return ENCODER_KINDS[settings.kind].prepare(settings, observer);
}
