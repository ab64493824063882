/** An encoder that cannot start as configured; the message says what to do about it. */
export class EncoderSetupError extends Error {
  override name = 'EncoderSetupError';
}
