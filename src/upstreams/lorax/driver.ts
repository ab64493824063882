import { baseComposition, upstreamNameOf, type DriverContext, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../types.js';
import { completionChunksFromGenerateStream, completionFromGenerate, generateParameters, promptOf } from './translate.js';

/**
 * LoRAX: completions go to native /generate and /generate_stream, which merge adapters per request
 * (parameters.merged_adapters, linear); its OpenAI chat endpoint takes one adapter, the top one.
 */
export class LoraxDriver implements UpstreamDriver {
  readonly kind = 'lorax';

  constructor(private readonly context: DriverContext) {}

  async prepareRouted(call: RoutedCall): Promise<PreparedRequest> {
    const adapters = call.decision.adapters;
    const base = call.decision.abstained;
    if (call.endpoint === 'chat') {
      // LoRAX's OpenAI endpoint takes the adapter in `model`; "" is the base model.
      if (base) return { path: '/v1/chat/completions', body: { ...call.body, model: '' }, composition: baseComposition(call.decision), served: [], fidelity: 1 };
      return {
        path: '/v1/chat/completions',
        body: { ...call.body, model: this.adapterId(adapters[0].id) },
        composition: adapters.length > 1 ? 'top1' : 'single',
        served: [{ id: adapters[0].id, weight: 1 }],
        fidelity: adapters[0].weight,
      };
    }
    const parameters = generateParameters(call.body);
    const local = !base && adapters.every((adapter) => this.context.adapters.get(adapter.id)?.path);
    if (local) parameters.adapter_source = 'local';
    if (base) {
      // No adapter_id and no merged_adapters: the base model.
    } else if (adapters.length === 1) parameters.adapter_id = this.adapterId(adapters[0].id);
    else {
      parameters.merged_adapters = {
        ids: adapters.map((adapter) => this.adapterId(adapter.id)),
        weights: adapters.map((adapter) => adapter.weight),
        merge_strategy: 'linear',
      };
    }
    const model = typeof call.body.model === 'string' ? call.body.model : 'lorauter';
    return {
      path: call.stream ? '/generate_stream' : '/generate',
      body: { inputs: promptOf(call.body), parameters },
      composition: base ? baseComposition(call.decision) : adapters.length > 1 ? 'merged_adapters' : 'single',
      // merged_adapters with merge_strategy linear applies the weights as given.
      served: base ? [] : adapters,
      fidelity: 1,
      translateResponse: (native) => completionFromGenerate(native, model),
      translateStream: (payloads) => completionChunksFromGenerateStream(payloads, model),
    };
  }

  private adapterId(id: string): string {
    return this.context.adapters.get(id)?.path ?? upstreamNameOf(this.context.adapters, id);
  }
}
