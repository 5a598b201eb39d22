import { bitFlipSuite } from './bit-flips.js';

bitFlipSuite('vault');
