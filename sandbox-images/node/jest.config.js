// Jest configuration of the sandbox's `jest` mode (SandboxFusion runs `jest` from its
// runtime/node project with babel-jest, @babel/preset-env and @babel/preset-typescript).
// The tests live in the run's working directory; packages resolve from this install.
const path = require('path');
const modules = path.join(__dirname, 'node_modules');
module.exports = {
  rootDir: process.cwd(),
  testMatch: ['**/*.test.[jt]s?(x)'],
  modulePaths: [modules],
  cacheDirectory: '/tmp/jest-cache',
  watchman: false,
  transform: {
    '\\.[jt]sx?$': [
      path.join(modules, 'babel-jest'),
      {
        presets: [
          [path.join(modules, '@babel/preset-env'), { targets: { node: 'current' } }],
          path.join(modules, '@babel/preset-typescript'),
        ],
        babelrc: false,
        configFile: false,
      },
    ],
  },
};
