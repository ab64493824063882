import type { EncoderKind, EncoderSettings } from '../config/schema.js';
import { availableParallelism } from 'node:os';
import { BuiltinEncoder, DEFAULT_BUILTIN_ENCODER_OPTIONS, type BuiltinEncoderOptions } from './builtin/builtin-encoder.js';
import { ThreadedBuiltinEncoder, type EncodingThread } from './builtin/threaded-encoder.js';
import type { Encoder } from './encoder.js';
import { EncoderSetupError } from './errors.js';
import { HybridEncoder } from './hybrid-encoder.js';
import { OnnxEncoder } from './onnx/onnx-encoder.js';
import { RemoteEncoder } from './remote/remote-encoder.js';
import { hubModelId } from './hub/model-id.js';
import { resolveHubModel, type HubEvents } from './hub/resolve-model.js';

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
  /** A model named by hub id: its resolution, downloads and their progress. */
  hub?: HubEvents;
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

/** The ONNX encoder of a local folder, or of a hub id once its export is in the cache. */
const loadOnnx = async (settings: EncoderSettings, observer: EncoderObserver = {}) => {
  if (!settings.model) throw new EncoderSetupError(`LORAUTER_ENCODER=${settings.kind} needs LORAUTER_ENCODER_MODEL: a Hugging Face model id (e.g. Xenova/all-MiniLM-L6-v2) or a sentence-transformers model folder exported to ONNX`);
  const id = hubModelId(settings.model);
  if (!id) return OnnxEncoder.load({ ...settings, model: settings.model });
  const resolved = await resolveHubModel(id, { hub: settings.hub, quantized: settings.quantized, events: observer.hub });
  observer.hub?.resolved?.(resolved);
  return OnnxEncoder.load({ ...settings, model: resolved.graph, source: resolved.source });
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
  onnx: { prepare: async (settings, observer) => fixed('onnx', await loadOnnx(settings, observer)) },
  remote: { prepare: async (settings) => fixed('remote', await connectRemote(settings)) },
  hybrid: {
    prepare: async (settings, observer) => {
      // The neural half: a local ONNX model when one is named, else the embeddings server.
      const neural = settings.model ? await loadOnnx(settings, observer) : settings.url ? await connectRemote(settings) : undefined;
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
