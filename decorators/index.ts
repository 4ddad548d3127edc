export { Replicate, replicate } from './replicate';
export { NotReplicated } from './not-replicated';
export type { ReplicateOptions } from '../src/metadata/replication-storage';
