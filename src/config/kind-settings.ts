/** How an upstream kind's folder declares its environment variables: the setting under `upstream` and its type. */
export type SettingType = 'text' | 'integer' | 'number' | 'toggle';
export type KindEnvironment = Readonly<Record<string, readonly [key: string, type: SettingType]>>;
