/** Jest in ESM mode (oidc-provider and openid-client are ESM-only); ts-jest transpiles. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        useESM: true,
        // Type checking is `npm run typecheck`; isolatedModules makes ts-jest only transpile.
        tsconfig: {
          isolatedModules: true,
          rewriteRelativeImportExtensions: false,
          allowImportingTsExtensions: true,
          noEmit: false,
        },
      },
    ],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  maxWorkers: 2,
  testTimeout: 60_000,
};
