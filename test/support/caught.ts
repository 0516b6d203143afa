import { HearsayError } from '@hearsay/client';

/** The `HearsayError` a client call rejects with; fails the test when it resolves or rejects with anything else. */
export async function caught(promise: Promise<unknown>): Promise<HearsayError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof HearsayError) return error;
    throw error;
  }
  throw new Error('expected a HearsayError');
}
