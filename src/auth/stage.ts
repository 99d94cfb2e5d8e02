import type { Routed } from '../routing/stage.js';
import type { ObtainedToken, SubjectInfo } from './token-service.js';

/** Stage after step 3 (subject): the user token was taken out of the request. */
export interface WithSubject extends Routed {
  readonly subject: SubjectInfo;
}

/** Stage after step 5 (token): a delegated token to send upstream. */
export interface Authorized extends WithSubject {
  token: ObtainedToken;
}
